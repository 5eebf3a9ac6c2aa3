import gc
gc.disable()
import v_factory  # noqa
defs = v_factory.defs
gc.freeze()
gc.enable()
