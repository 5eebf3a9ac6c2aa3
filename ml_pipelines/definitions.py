"""The code location: `dagster dev`, workspace.yaml and pyproject.toml point here."""

import gc

# Building thousands of definitions allocates millions of long-lived objects; with the
# default thresholds the cyclic GC rescans them over and over (a third of the load time
# at 1,000 pipelines, see bench/). Collections still run, just less often.
gc.set_threshold(50_000, 50, 100)

from ml_pipelines.config.file_cache import FileCache
from ml_pipelines.config.loader import load_project
from ml_pipelines.config.variables import load_variables
from ml_pipelines.environment import build_executor, build_resources, settings_from_env
from ml_pipelines.factory import build_definitions


def build_code_location():
    settings = settings_from_env()
    # Every Dagster process loads this module: reuse what earlier loads worked out from
    # unchanged files (see config/file_cache.py).
    files = FileCache.for_project(settings.home / "cache", settings.project_dir)
    project = load_project(settings.project_dir, env=settings.env, files=files)
    variables = load_variables(project.paths.model_configs, settings.env)
    defs = build_definitions(
        project, settings, build_resources(settings, variables.stages), build_executor(settings)
    )
    files.save()
    return defs


defs = build_code_location()

# Every process that imports this module goes on to build the repository and the asset job
# (code server, run worker, validate). Building them here, at import, lets each step's
# process, forked from a server that imported this module, start without rebuilding them.
defs.get_repository_def().get_implicit_global_asset_job_def()

# The definitions live as long as the process (code server, run worker). Moving them and
# everything before them out of the collector's reach spares each later full collection,
# and the one at interpreter exit, a walk over millions of objects (about 2 s of each
# `dagster definitions validate` at 1,000 pipelines, see bench/).
gc.freeze()
