"""Where each external wait's awaited pipeline runs, and what `validate` warns about waits.

Pure Python (no Dagster): `ml_pipelines/waits/` builds the sensor from the same answers.

A wait names its source with `external_dag_details.source` (`this`, `dagster`, `airflow`);
without it: `this` when `external_dag_id` is one of this project's pipelines (valid or not),
else `airflow` when an Airflow is configured (ML_PIPELINES_AIRFLOW_URL), else `unknown`: the
load and `validate` warn, naming the id, and the wait is never satisfied on its own (it
times out).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from ml_pipelines.config.checks import did_you_mean
from ml_pipelines.config.cron import cron_of, parse_cron, ticks_on
from ml_pipelines.config.errors import ConfigError
from ml_pipelines.config.schema import ExternalDagDetails, ExternalWaitStep, StepKind

if TYPE_CHECKING:
    from ml_pipelines.config.loader import LoadedPipeline, Project

THIS, DAGSTER, AIRFLOW, UNKNOWN = "this", "dagster", "airflow", "unknown"
ALIGNMENT_DAYS = 8  # the first days of ticks checked for an awaited partition that starts at the shifted time


def wait_source(details: ExternalDagDetails, project_ids: set[str], airflow_configured: bool) -> str:
    """`this`, `dagster`, `airflow`, or `unknown` (no source set, not a pipeline here, no Airflow)."""
    if details.source:
        return details.source
    if details.external_dag_id in project_ids:
        return THIS
    return AIRFLOW if airflow_configured else UNKNOWN


def project_ids(project: Project) -> set[str]:
    """The pipeline ids of the project: the valid ones and those of rejected configs."""
    return set(project.pipeline_ids) | set(project.invalid_pipeline_ids)


def external_waits(pipeline: LoadedPipeline) -> list[ExternalWaitStep]:
    return [s for s in pipeline.config.tasks if s.kind is StepKind.EXTERNAL_WAIT]  # type: ignore[misc]


def wait_warnings(project: Project, airflow_configured: bool) -> list[ConfigError]:
    """What the load and `validate` warn about: waits that can never be satisfied as written."""
    ids = project_ids(project)
    by_id = {p.pipeline_id: p for p in project.pipelines}
    warnings = []
    for pipeline in project.pipelines:
        for step in external_waits(pipeline):
            details = step.external_dag_details
            dag_id = details.external_dag_id
            source = wait_source(details, ids, airflow_configured)
            at = ("external_dag_details", "external_dag_id")
            if source == UNKNOWN:
                warnings.append(
                    pipeline.error_at(
                        step.name,
                        at,
                        f"warning: {dag_id!r} is not a pipeline of this project{did_you_mean(dag_id, sorted(ids))} "
                        "and ML_PIPELINES_AIRFLOW_URL is not set: this wait is never satisfied on its own "
                        "(set external_dag_details.source to airflow or dagster if it runs elsewhere)",
                    )
                )
            elif source == THIS and dag_id not in ids:
                warnings.append(
                    pipeline.error_at(
                        step.name,
                        at,
                        f"warning: source: this, but {dag_id!r} is not a pipeline of this project"
                        f"{did_you_mean(dag_id, sorted(ids))}: this wait is never satisfied",
                    )
                )
            elif source == THIS and dag_id in by_id:
                problem = _same_location_problem(pipeline, details, by_id[dag_id])
                if problem:
                    warnings.append(pipeline.error_at(step.name, ("external_dag_details",), "warning: " + problem))
    return warnings


def _same_location_problem(
    pipeline: LoadedPipeline, details: ExternalDagDetails, awaited: LoadedPipeline
) -> str | None:
    """A wait on a pipeline of this project that can never be satisfied: an unknown step, or
    no awaited partition starting at the shifted time of this pipeline's first ticks."""
    task = details.external_task_id
    if task and task not in {t.name for t in awaited.config.tasks}:
        names = [t.name for t in awaited.config.tasks]
        return (
            f"pipeline {awaited.pipeline_id} has no step {task!r}{did_you_mean(task, names)}: "
            "this wait is never satisfied"
        )
    own_cron, awaited_cron = cron_of(pipeline.config.schedule_interval), cron_of(awaited.config.schedule_interval)
    own_start, awaited_start = pipeline.config.default_args.start_date, awaited.config.default_args.start_date
    if not (own_cron and awaited_cron and own_start and awaited_start):
        return None  # no ticks here (runs by hand only), or an unpartitioned awaited pipeline
    try:
        own, theirs = parse_cron(own_cron), parse_cron(awaited_cron)
    except ValueError:
        return None  # reported elsewhere
    first = max(own_start, awaited_start) + timedelta(days=1)
    shifted = []
    for offset in range(ALIGNMENT_DAYS):
        day = first + timedelta(days=offset)
        for tick in ticks_on(own, day):
            target = tick - details.execution_delta
            if target in ticks_on(theirs, target.date()):
                return None
            shifted.append(target)
    if not shifted:
        return None
    example = shifted[0].astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")
    return (
        f"no partition of {awaited.pipeline_id} (schedule {awaited.config.schedule_interval!r}) starts at this "
        f"pipeline's partition start minus execution_delta {details.execution_delta} (e.g. {example} UTC): "
        "this wait is never satisfied; make the two schedules and execution_delta line up"
    )


def airflow_logical_date(partition_start: datetime, delta: timedelta) -> datetime:
    """The awaited run's logical date: this run's (its partition start, as Airflow's) minus execution_delta."""
    return partition_start - delta


def steps_after_waits(config) -> dict[str, frozenset[str]]:
    """Each step downstream (directly or not) of an external wait -> the waits it is downstream
    of. These steps do not run at the pipeline's tick: the waits sensor launches them."""
    tasks = {t.name: t for t in config.tasks}
    waits = {name for name, t in tasks.items() if t.kind is StepKind.EXTERNAL_WAIT}
    after: dict[str, frozenset[str]] = {}
    for name in config.step_order():
        upstream: set[str] = set()
        for up in tasks[name].upstream_task_name:
            if up in waits:
                upstream.add(up)
            upstream |= after.get(up, frozenset())
        if upstream:  # (a wait after a wait is kept here so that its downstream inherits both)
            after[name] = frozenset(upstream)
    return {name: ws for name, ws in after.items() if name not in waits}


def airflow_url_set(environ=None) -> bool:
    """Whether ML_PIPELINES_AIRFLOW_URL is set (a default source is airflow only then)."""
    import os

    environ = os.environ if environ is None else environ
    return bool(environ.get("ML_PIPELINES_AIRFLOW_URL", "").strip())
