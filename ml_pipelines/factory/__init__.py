"""Validated configs -> Dagster Definitions. Knows nothing of AWS or of LOCAL backends."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from dagster import Definitions, ExecutorDefinition

from ml_pipelines.config.loader import Project
from ml_pipelines.factory.assets import is_time_partitioned, pipeline_definitions, sink_keys, step_key
from ml_pipelines.factory.broken import broken_config_asset
from ml_pipelines.factory.partitions import cron_of, pipeline_partitions
from ml_pipelines.factory.schedules import pipeline_schedule
from ml_pipelines.steps.registry import spec_of

if TYPE_CHECKING:
    from ml_pipelines.environment import Settings

log = logging.getLogger("ml_pipelines")


class BrokenConfigs(Exception):
    """Raised in strict mode when any config fails validation."""


def build_definitions(
    project: Project,
    settings: Settings,
    resources: dict[str, Any],
    executor: ExecutorDefinition | None = None,
) -> Definitions:
    """The code location for `project` run with `settings`: an asset per step, a schedule
    per pipeline, an asset per broken config file."""
    for error in project.errors:
        log.error("config error: %s", error)
    if settings.strict and project.errors:
        raise BrokenConfigs(
            f"{len(project.errors)} config error(s) (ML_PIPELINES_STRICT=1):\n"
            + "\n".join(str(e) for e in project.errors)
        )
    sinks = {p.config.pipeline_id: sink_keys(p) for p in project.pipelines}

    assets: list = []
    schedules = []
    assets_and_schedules(project, settings, sinks, assets, schedules)
    for config_file, errors in sorted(project.broken.items()):
        assets.append(broken_config_asset(config_file, errors, project.paths.root))
    return Definitions(assets=assets, schedules=schedules, resources=resources, executor=executor)


def assets_and_schedules(project: Project, settings: Settings, sinks, assets: list, schedules: list) -> None:
    for pipeline in project.pipelines:
        assets.extend(pipeline_definitions(pipeline, settings, sinks, project.session))
        config = pipeline.config
        cron = cron_of(config.schedule_interval)
        if cron is None:
            continue
        partitions_def = pipeline_partitions(config)
        pid = config.pipeline_id
        keys = [step_key(pid, t.name) for t in config.tasks if spec_of(t).runnable]
        # A partition is done when the pipeline's last time-partitioned steps have it.
        done_keys = [
            step_key(pid, t.name)
            for t in config.tasks
            if is_time_partitioned(t) and step_key(pid, t.name) in sinks[pid]
        ]
        schedules.append(pipeline_schedule(pipeline, cron, partitions_def, keys, done_keys))
