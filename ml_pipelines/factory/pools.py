"""`max_active_runs` as Dagster concurrency pools: one pool per pipeline, run granularity.

Each step's op of a pipeline with `max_active_runs: N` is in the pool `ml_pipelines/<pipeline
id>`. The instance's `dagster.yaml` sets `concurrency: pools: granularity: run`: the run
queue (QueuedRunCoordinator + the daemon) then starts a run only while each pool its steps
use has fewer runs in progress than the pool's limit, whatever launched the run (a
schedule, *Materialize* in the UI, `ml-pipelines run`, a backfill).

The limits live in the instance. The sensor `ml_pipelines_run_limits` (running as soon as the
code location loads) writes each pipeline's limit there on its first tick and whenever a
config changes it, and removes the limits of pools no config uses any more; `ml-pipelines
run` does the same before it queues a run. Until the first tick, the instance's
`default_limit: 1` holds every pool to one run.
"""

from __future__ import annotations

from collections.abc import Mapping

from dagster import (
    DagsterInstance,
    DefaultSensorStatus,
    Definitions,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from ml_pipelines.config.loader import Project
from ml_pipelines.config.schema import PipelineConfig

POOL_PREFIX = "ml_pipelines/"
RUN_LIMITS_SENSOR_NAME = "ml_pipelines_run_limits"
RUN_LIMITS_INTERVAL_SECONDS = 30


def pool_of(config: PipelineConfig) -> str | None:
    """The pool of the pipeline's steps; None when it sets no max_active_runs (no limit)."""
    if config.max_active_runs is None:
        return None
    return POOL_PREFIX + config.pipeline_id


def pool_limits(project: Project) -> dict[str, int]:
    """Pool -> limit for every valid pipeline that sets max_active_runs."""
    limits = {}
    for pipeline in project.pipelines:
        pool = pool_of(pipeline.config)
        if pool is not None:
            limits[pool] = pipeline.config.max_active_runs
    return limits


def sync_pool_limits(instance: DagsterInstance, limits: Mapping[str, int]) -> list[str]:
    """Make the instance's limits of our pools (`ml_pipelines/...`) those of `limits`: set the
    missing and different ones, delete those of pools no pipeline has. One read when nothing
    changed. Returns what changed, one line each."""
    storage = instance.event_log_storage
    current = {limit.name: limit for limit in storage.get_pool_limits()}
    changes = []
    for pool, limit in sorted(limits.items()):
        known = current.get(pool)
        if known is None or known.limit != limit or known.from_default:
            storage.set_concurrency_slots(pool, limit)
            before = "none" if known is None else f"{known.limit}{' (default)' if known.from_default else ''}"
            changes.append(f"{pool}: {before} -> {limit}")
    for pool in sorted(current):
        if pool.startswith(POOL_PREFIX) and pool not in limits:
            storage.delete_concurrency_limit(pool)
            changes.append(f"{pool}: {current[pool].limit} -> removed (no max_active_runs)")
    return changes


def run_limits_definitions(project: Project) -> Definitions:
    """The sensor that keeps the instance's pool limits equal to the configs' max_active_runs."""
    limits = pool_limits(project)

    @sensor(
        name=RUN_LIMITS_SENSOR_NAME,
        minimum_interval_seconds=RUN_LIMITS_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            "Writes each pipeline's max_active_runs as the limit of its concurrency pool "
            "(ml_pipelines/<pipeline id>) in the instance; the run queue holds a pipeline's runs "
            "beyond it. Launches nothing."
        ),
    )
    def ml_pipelines_run_limits(context: SensorEvaluationContext) -> SensorResult:
        changes = sync_pool_limits(context.instance, limits)
        for change in changes:
            context.log.info(f"pool limit {change}")
        summary = f"{len(changes)} pool limit(s) changed" if changes else f"{len(limits)} pool limit(s) up to date"
        return SensorResult(skip_reason=SkipReason(summary))

    return Definitions(sensors=[ml_pipelines_run_limits])
