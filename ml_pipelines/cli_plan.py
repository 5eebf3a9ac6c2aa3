"""The JSON `ml-pipelines plan` prints: each step planned as a run would plan it.

The steps go through `plan.resolve`'s `Resolver` and `PLANNERS`, with the storage root
and variables a run uses, so the printed plan is exactly what executes.
"""

from __future__ import annotations

import dataclasses
import difflib
from datetime import date, datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ml_pipelines.config.checks import load_env_variables
from ml_pipelines.config.errors import ConfigError
from ml_pipelines.config.schema import StepKind
from ml_pipelines.config.variables import VariablesError
from ml_pipelines.plan.model import GluePlan, NotebookPlan
from ml_pipelines.plan.resolve import PLANNERS, Resolver, is_noop_step
from ml_pipelines.plan.storage_layout import PlanError
from ml_pipelines.plan.versions import step_code_version
from ml_pipelines.plan.windows import midnight, window_for

if TYPE_CHECKING:
    from ml_pipelines.config.loader import LoadedPipeline, Project


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Enum):
        return value.value
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _storage_of(plan: Any) -> dict[str, Any]:
    """Input and output locations; None where the layout defines none (a Glue or Python
    script writes where its parameters say; SQL writes to the warehouse)."""
    if isinstance(plan, NotebookPlan):
        return {"input": plan.input_uri, "output": plan.output_uri}
    if isinstance(plan, GluePlan):
        return {
            "input": plan.input_uri,
            "output": None,
            "base": plan.base_uri,
            "lib": plan.lib_uri,
            "jar": plan.jar_uri,
            "temp": plan.temp_uri,
            **plan.common_input_uris,
        }
    return {"input": None, "output": None}


class StepPlanError(ValueError):
    """A step cannot be planned for this env and date because of the user's data; `error`
    locates it in the config."""

    def __init__(self, error: ConfigError) -> None:
        self.error = error
        super().__init__(str(error))


def _pipeline(project: Project, pipeline_id: str) -> LoadedPipeline:
    for pipeline in project.pipelines:
        if pipeline.config.pipeline_id == pipeline_id:
            return pipeline
    known = sorted(p.config.pipeline_id for p in project.pipelines)
    close = difflib.get_close_matches(pipeline_id, known, n=1)
    hint = f"; did you mean {close[0]}?" if close else (f"; known: {', '.join(known)}" if known else "")
    raise PlanError(f"unknown pipeline {pipeline_id!r}{hint}")


def plan_as_dict(
    project: Project,
    pipeline_id: str,
    env: str,
    logical_date: date | None,
    *,
    storage_root: Path | None,
) -> dict[str, Any]:
    """JSON-able plan of a whole pipeline for `env` and `logical_date` (default: today, UTC),
    in the order the steps run; StepPlanError when a step cannot be planned. `storage_root`: as a run gets it (`Settings.storage_root`).
    Each step: name, kind, asset_key, deps, code_version, parameters (resolved), templates
    (rendered), storage ({input, output...} URIs), and the fields of its plan (paths as
    text; `run` left out)."""
    env = env.upper()
    pipeline = _pipeline(project, pipeline_id)
    config = pipeline.config
    paths = project.paths
    day = logical_date or datetime.now(timezone.utc).date()
    window = window_for(config.schedule_interval, config.default_args.start_date, day)
    variables = load_env_variables(paths, env, project.session)
    if isinstance(variables, VariablesError):
        raise StepPlanError(ConfigError(variables.path, variables.line, "", variables.detail, root=paths.root))
    order = config.step_order()
    steps = []
    for name in order:
        step = config.step(name)
        entry: dict[str, Any] = {
            "name": name,
            "kind": step.kind.value,
            "asset_key": [config.pipeline_id, name],
            "deps": [[config.pipeline_id, up] for up in step.upstream_task_name],
            "code_version": step_code_version(pipeline, name, paths),
        }
        if is_noop_step(pipeline, name):
            entry.update(noop=True, parameters={}, templates={}, storage={"input": None, "output": None})
            steps.append(entry)
            continue
        resolver = Resolver(
            pipeline, step, env, window, paths=paths, variables=variables, storage_root=storage_root, now=midnight(day)
        )
        try:
            plan = PLANNERS[step.kind](resolver)
            if isinstance(plan, NotebookPlan):
                parameters: dict[str, Any] = plan.parameters
            elif step.kind in (StepKind.EXTERNAL_WAIT, StepKind.CONTAINER_IMAGE):
                parameters = {}
            else:
                parameters = resolver.parameters
            templates = resolver.templates
        except ValueError as exc:  # PlanError, TemplateRenderError, ParameterFileError: the user's data
            raise StepPlanError(pipeline.error_for(name, exc)) from exc
        entry.update(
            noop=False,
            parameters=_jsonable(parameters),
            templates=_jsonable(templates),
            storage=_storage_of(plan),
        )
        for key, value in _jsonable(plan).items():
            if key != "run":
                entry.setdefault(key, value)
        steps.append(entry)
    return {
        "pipeline_id": config.pipeline_id,
        "env": env,
        "schedule": config.schedule_interval,
        "logical_date": day.isoformat(),
        "window": None if window is None else {"start": window.start.isoformat(), "end": window.end.isoformat()},
        "config_file": paths.rel(Path(pipeline.source)),
        "steps": steps,
    }
