"""Validated configs -> Dagster Definitions. Knows nothing of AWS or of LOCAL backends.

Each pipeline is built inside its own guard: whatever goes wrong while building one (a
bug, a RecursionError in a file digest, an OSError from a symlink loop, a definition
Dagster refuses) makes its config file a broken-config asset, and the other pipelines
load.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster import AssetKey, Definitions, ExecutorDefinition, JobDefinition, ScheduleDefinition

from ml_pipelines.config.errors import ConfigError
from ml_pipelines.config.loader import LoadedPipeline, Project
from ml_pipelines.config.session import LoadSession
from ml_pipelines.config.waits import steps_after_waits
from ml_pipelines.factory.assets import is_time_partitioned, pipeline_definitions, sink_keys, step_key
from ml_pipelines.factory.broken import broken_config_asset, broken_config_names
from ml_pipelines.factory.jobs import pipeline_job
from ml_pipelines.factory.partitions import cron_of, pipeline_partitions
from ml_pipelines.factory.schedules import pipeline_schedule, run_tags
from ml_pipelines.steps.registry import spec_of

if TYPE_CHECKING:
    from ml_pipelines.environment import Settings

log = logging.getLogger("ml_pipelines")

_MAX_DETAIL = 300  # characters of an exception's text in a build error (an ELOOP path is long)


class BrokenConfigs(Exception):
    """Raised in strict mode when any config fails validation."""


def build_definitions(
    project: Project,
    settings: Settings,
    resources: dict[str, Any],
    executor: ExecutorDefinition | None = None,
) -> Definitions:
    """The code location for `project` run with `settings`: an asset per step, a job and a
    schedule per pipeline, an asset per broken config file (failing validation or failing to
    build)."""
    for error in project.errors:
        log.error("config error: %s", error)
    if settings.strict and project.errors:
        raise BrokenConfigs(
            f"{len(project.errors)} config error(s) (ML_PIPELINES_STRICT=1):\n"
            + "\n".join(str(e) for e in project.errors)
        )
    assets: list = []
    schedules: list = []
    jobs: list = []
    build_errors = assets_and_schedules(
        project, settings, pipeline_sinks(project), assets, schedules, jobs=(jobs, resources, executor)
    )
    if settings.strict and build_errors:
        errors = [e for file_errors in build_errors.values() for e in file_errors]
        raise BrokenConfigs(
            f"{len(errors)} pipeline(s) failed to build (ML_PIPELINES_STRICT=1):\n" + "\n".join(map(str, errors))
        )
    broken = {path: list(errors) for path, errors in project.broken.items()}
    for path, errors in build_errors.items():
        broken.setdefault(path, []).extend(errors)
    names = broken_config_names(list(broken), project.paths.root)
    for config_file, errors in sorted(broken.items()):
        assets.append(broken_config_asset(config_file, errors, project.paths.root, names[config_file]))
    return Definitions(assets=assets, schedules=schedules, jobs=jobs, resources=resources, executor=executor)


def pipeline_sinks(project: Project) -> dict[str, list[AssetKey]]:
    """Each pipeline's last steps (what a wait for a whole pipeline depends on); a pipeline
    whose sinks cannot be worked out is left out (its own build reports it)."""
    sinks = {}
    for pipeline in project.pipelines:
        try:
            sinks[pipeline.config.pipeline_id] = sink_keys(pipeline)
        except Exception:  # noqa: BLE001 - the pipeline's guarded build fails the same way
            continue
    return sinks


def build_error(pipeline: LoadedPipeline, exc: BaseException, root: Path | None) -> ConfigError:
    """A pipeline's build failure as a config error at its `dags.<family>` line."""
    detail = str(exc)
    if len(detail) > _MAX_DETAIL:
        detail = detail[: _MAX_DETAIL - 3] + "..."
    return ConfigError(
        pipeline.source,
        pipeline.line,
        f"dags.{pipeline.family}",
        f"internal error while building pipeline {pipeline.pipeline_id}: {type(exc).__name__}: {detail}",
        root=root,
    )


def assets_and_schedules(
    project: Project,
    settings: Settings,
    sinks: dict[str, list[AssetKey]],
    assets: list,
    schedules: list,
    jobs: tuple[list, dict[str, Any], ExecutorDefinition | None] | None = None,
) -> dict[Path, list[ConfigError]]:
    """Extend `assets` and `schedules` with each pipeline that builds, and, given `jobs` (the
    list, the resources and the executor of the jobs), the jobs; return the build errors of
    the others by config file (a failed pipeline adds nothing)."""
    failed: dict[Path, list[ConfigError]] = {}
    op_owners: dict[str, str] = {}  # op name -> pipeline id, across pipelines
    job_list, resources, executor = jobs if jobs is not None else ([], {}, None)
    for pipeline in project.pipelines:
        try:
            ops = _op_names(pipeline, op_owners)
            built, job, schedule = _build_pipeline(pipeline, settings, sinks, project.session, resources, executor)
        except Exception as exc:  # RecursionError and OSError included: one config never breaks the location
            error = build_error(pipeline, exc, project.paths.root)
            log.error("config error: %s", error, exc_info=True)
            failed.setdefault(pipeline.source, []).append(error)
            continue
        op_owners.update(dict.fromkeys(ops, pipeline.pipeline_id))
        assets.extend(built)
        if job is not None:
            job_list.append(job)
        if schedule is not None:
            schedules.append(schedule)
    return failed


def _op_names(pipeline: LoadedPipeline, taken: dict[str, str]) -> list[str]:
    """The op names of the pipeline's steps; ValueError when two steps, or a step and
    another pipeline's step, would share one (Dagster refuses the whole location)."""
    pid = pipeline.pipeline_id
    mine: dict[str, str] = {}
    for step in pipeline.config.tasks:
        if not spec_of(step).runnable:
            continue
        op = step_key(pid, step.name).to_python_identifier()
        if op in mine:
            raise ValueError(f"step names {mine[op]!r} and {step.name!r} both become op name {op!r}; rename one")
        if op in taken:
            raise ValueError(f"step {step.name!r} becomes op name {op!r}, already the op of pipeline {taken[op]}")
        mine[op] = step.name
    return list(mine)


def _build_pipeline(
    pipeline: LoadedPipeline,
    settings: Settings,
    sinks: dict[str, list[AssetKey]],
    session: LoadSession,
    resources: dict[str, Any],
    executor: ExecutorDefinition | None,
) -> tuple[list, JobDefinition | None, ScheduleDefinition | None]:
    """The pipeline's assets, job (None without a runnable step, or with
    ML_PIPELINES_PIPELINE_JOBS=0) and schedule (None without a cron or a runnable step)."""
    built = pipeline_definitions(pipeline, settings, sinks, session)
    job = pipeline_job(pipeline, built, run_tags(pipeline), resources, executor) if settings.pipeline_jobs else None
    config = pipeline.config
    cron = cron_of(config.schedule_interval)
    runnable = any(spec_of(t).runnable for t in config.tasks)
    if cron is None or not runnable:
        return built, job, None
    partitions_def = pipeline_partitions(config)
    pid = config.pipeline_id
    # Steps after an external wait are launched by the waits sensor, not at the tick (ml_pipelines/waits).
    after_waits = steps_after_waits(config)
    keys = [step_key(pid, t.name) for t in config.tasks if spec_of(t).runnable and t.name not in after_waits]
    # A partition is done when the pipeline's last time-partitioned steps have it.
    own_sinks = sinks.get(pid, [])
    done_keys = [
        step_key(pid, t.name) for t in config.tasks if is_time_partitioned(t) and step_key(pid, t.name) in own_sinks
    ]
    return built, job, pipeline_schedule(pipeline, cron, partitions_def, job, keys, done_keys)
