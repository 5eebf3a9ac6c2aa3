"""The code location: `dagster dev`, workspace.yaml and pyproject.toml point here.

The one place that tunes the cyclic garbage collector: building thousands of definitions
allocates millions of long-lived objects, and the collector's passes over them find
nothing to free.
"""

import gc

# Before and after the build (imports, Dagster's own work on the definitions), the default
# thresholds would rescan the growing heap over and over. Collections still run, just
# less often.
gc.set_threshold(50_000, 50, 100)

from ml_pipelines.dagster_home import warn_if_temporary_instance
from ml_pipelines.environment import settings_from_env
from ml_pipelines.location import build_code_location

# `dagster asset materialize` without DAGSTER_HOME: its run would not show in the UI.
warn_if_temporary_instance()

# No collection at all while the definitions are built (the load cache is read, the
# project loaded, the assets made): about a tenth of the build at 1,000 pipelines.
_collecting = gc.isenabled()
gc.disable()
try:
    defs = build_code_location(settings_from_env(), __name__)
    # Every process that imports this module goes on to build the repository and the
    # asset job (code server, run worker, validate). Building them here lets each step's
    # process, forked from a server that imported this module, start without rebuilding.
    defs.get_repository_def().get_implicit_global_asset_job_def()
    # The definitions live as long as the process (code server, run worker). Moving them
    # and everything before them out of the collector's reach spares each later full
    # collection, and the one at interpreter exit, a walk over millions of objects (about
    # 2 s of each `dagster definitions validate` at 1,000 pipelines, see bench/).
    gc.freeze()
finally:
    if _collecting:
        gc.enable()
