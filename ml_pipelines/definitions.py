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

from ml_pipelines.config.load_store import LoadStore
from ml_pipelines.config.loader import load_project
from ml_pipelines.config.session import LoadSession
from ml_pipelines.config.variables import load_variables
from ml_pipelines.environment import build_executor, build_resources, settings_from_env
from ml_pipelines.factory import build_definitions


def build_code_location():
    settings = settings_from_env()
    # Every Dagster process loads this module: reuse what earlier loads worked out from
    # unchanged files (the load cache, see config/load_store.py).
    session = LoadSession(LoadStore.for_project(settings.home / "cache", settings.project_dir))
    project = load_project(settings.project_dir, env=settings.env, session=session)
    variables = load_variables(project.paths.model_configs, settings.env)
    defs = build_definitions(
        project, settings, build_resources(settings, variables.stages), build_executor(settings, __name__)
    )
    session.save()
    return defs


# No collection at all while the definitions are built (the load cache is read, the
# project loaded, the assets made): about a tenth of the build at 1,000 pipelines.
_collecting = gc.isenabled()
gc.disable()
try:
    defs = build_code_location()
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
