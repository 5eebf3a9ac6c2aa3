"""Validated configs -> Dagster Definitions. Knows nothing of AWS or of LOCAL backends."""

from __future__ import annotations

import logging
from typing import Any

from dagster import Definitions

from ml_pipelines.config.loader import Project
from ml_pipelines.factory.assets import RunSettings, is_time_partitioned, pipeline_definitions, sink_keys, step_key
from ml_pipelines.factory.broken import broken_config_asset
from ml_pipelines.factory.partitions import cron_of, partitions_for
from ml_pipelines.factory.schedules import pipeline_schedule

log = logging.getLogger("ml_pipelines")


class BrokenConfigs(Exception):
    """Raised in strict mode when any config fails validation."""


def build_definitions(
    project: Project,
    env: str,
    resources: dict[str, Any],
    *,
    storage_root=None,
    strict: bool = False,
) -> Definitions:
    for error in project.errors:
        log.error("config error: %s", error)
    if strict and project.errors:
        raise BrokenConfigs(
            f"{len(project.errors)} config error(s) (ML_PIPELINES_STRICT=1):\n"
            + "\n".join(str(e) for e in project.errors)
        )
    run_settings = RunSettings(env=env, paths=project.paths, storage_root=storage_root)
    sinks = {p.config.pipeline_id: sink_keys(p) for p in project.pipelines}

    assets: list = []
    schedules = []
    assets_and_schedules(project, run_settings, sinks, assets, schedules)
    for config_file, errors in sorted(project.broken.items()):
        assets.append(broken_config_asset(config_file, errors, project.paths.root))
    return Definitions(assets=assets, schedules=schedules, resources=resources)


def assets_and_schedules(project: Project, run_settings: RunSettings, sinks, assets: list, schedules: list) -> None:
    for pipeline in project.pipelines:
        assets.extend(pipeline_definitions(pipeline, project.paths, run_settings, sinks, project.session))
        config = pipeline.config
        cron = cron_of(config.schedule_interval)
        if cron is None:
            continue
        start = config.default_args.start_date
        partitions_def = partitions_for(cron, start) if start else None
        pid = config.pipeline_id
        keys = [step_key(pid, t.name) for t in config.tasks if t.kind.value != "external_wait"]
        # A partition is done when the pipeline's last time-partitioned steps have it.
        done_keys = [step_key(pid, t.name) for t in config.tasks
                     if is_time_partitioned(t) and step_key(pid, t.name) in sinks[pid]]
        schedules.append(pipeline_schedule(pipeline, cron, partitions_def, keys, done_keys))
