"""The code location of one project, built as every Dagster process builds it.

`definitions.py` calls this with the settings of the process's environment; tests call it
with their own. One path: load (through the load cache), variables, resources, executor.
"""

from __future__ import annotations

from dagster import Definitions

from ml_pipelines.alerts.sensors import alert_definitions
from ml_pipelines.config.checks import load_env_variables
from ml_pipelines.config.load_store import LoadStore
from ml_pipelines.config.load_store_codec import CODECS
from ml_pipelines.config.loader import load_project
from ml_pipelines.config.session import LoadSession
from ml_pipelines.config.variables import VariablesError
from ml_pipelines.environment import Settings, build_executor, build_resources
from ml_pipelines.factory import build_definitions
from ml_pipelines.factory.pools import run_limits_definitions
from ml_pipelines.waits.sensor import wait_definitions


def build_code_location(settings: Settings, module: str) -> Definitions:
    """The Definitions of `settings.project_dir` in `settings.env`; `module` is the module
    that serves them (its step processes preload it, see `environment.build_executor`)."""
    # Every Dagster process loads the code location: reuse what earlier loads worked out
    # from unchanged files (the load cache, see config/load_store.py).
    store = (
        LoadStore()
        if settings.cache_dir is None
        else LoadStore.for_project(settings.cache_dir, settings.project_dir, CODECS)
    )
    session = LoadSession(store)
    project = load_project(settings.project_dir, env=settings.env, session=session)
    # A broken variables.yml is a config error of the load (its own broken-config asset).
    variables = load_env_variables(project.paths, settings.env, session)
    stages = {} if isinstance(variables, VariablesError) else variables.stages
    kinds = {step.kind.value for pipeline in project.pipelines for step in pipeline.config.tasks}
    resources = build_resources(settings, stages, kinds)
    defs = build_definitions(project, settings, resources, build_executor(settings, module))
    defs = Definitions.merge(defs, alert_definitions(project, settings))  # one alert sensor (ml_pipelines/alerts)
    defs = Definitions.merge(defs, run_limits_definitions(project))  # max_active_runs as pool limits
    defs = Definitions.merge(defs, wait_definitions(project, settings, defs))  # one waits sensor (ml_pipelines/waits)
    session.save()
    return defs
