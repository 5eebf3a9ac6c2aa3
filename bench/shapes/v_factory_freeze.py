import gc
import v_factory  # noqa
defs = v_factory.defs
gc.freeze()
