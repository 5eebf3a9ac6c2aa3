"""A schedule per pipeline, targeting the pipeline's job (factory/jobs.py), or Dagster's
implicit asset job with the pipeline's assets when jobs are off (ML_PIPELINES_PIPELINE_JOBS=0).

The job makes the schedule show on each of the pipeline's asset pages; an unpartitioned
pipeline's runs are the whole job, a partitioned one's a partition of it (several with
catchup).
"""

from __future__ import annotations

from itertools import islice

from dagster import (
    AssetKey,
    DagsterEventType,
    DefaultScheduleStatus,
    JobDefinition,
    RunRequest,
    RunsFilter,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    TimeWindowPartitionsDefinition,
)
from dagster._core.storage.tags import PARTITION_NAME_TAG as PARTITION_TAG

from ml_pipelines.config.loader import LoadedPipeline
from ml_pipelines.plan.storage_layout import PlanError
from ml_pipelines.plan.windows import ticks_before

IMPLICIT_ASSET_JOB = "__ASSET_JOB"
MAX_CATCHUP_RUNS_PER_TICK = 10
# A catchup tick looks at most this many partitions back from the tick's own: its work (and
# the instance queries) stay bounded however old start_date is; older ones are backfills.
CATCHUP_LOOKBACK_PARTITIONS = 1_000


def run_tags(pipeline: LoadedPipeline) -> dict[str, str]:
    """Tags every run of the pipeline's job carries: its id. (Its max_active_runs is its
    steps' concurrency pool, factory/pools.py, not a tag: it holds for every run.)"""
    from ml_pipelines.factory.assets import PIPELINE_TAG

    return {PIPELINE_TAG: pipeline.config.pipeline_id}


def pipeline_schedule(
    pipeline: LoadedPipeline,
    cron: str,
    partitions_def: TimeWindowPartitionsDefinition | None,
    job: JobDefinition | None,
    keys: list[AssetKey],
    sinks: list[AssetKey],
) -> ScheduleDefinition:
    config = pipeline.config
    pid = config.pipeline_id
    tags = run_tags(pipeline)

    def evaluate(context: ScheduleEvaluationContext):
        if not keys:  # every step is after an external wait: the waits sensor launches them
            yield SkipReason(f"{pid}: every step waits on an external wait (launched by ml_pipelines_waits)")
            return
        if partitions_def is None:
            yield RunRequest(asset_selection=keys, tags=tags)
            return
        tick = context.scheduled_execution_time
        latest = partitions_def.get_partition_key_for_timestamp(tick.timestamp(), end_closed=True)
        wanted = [latest]
        if config.catchup:
            wanted = missed_partitions(context, partitions_def, sinks, latest, pid)
        if not wanted:
            yield SkipReason(f"{pid}: no partition left to run")
        for key in wanted:
            yield RunRequest(run_key=f"{pid}:{key}", asset_selection=keys, partition_key=key, tags=tags)

    return ScheduleDefinition(
        name=f"{pid}_schedule",
        cron_schedule=cron,
        **({"job": job} if job is not None else {"job_name": IMPLICIT_ASSET_JOB}),
        execution_fn=evaluate,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.STOPPED,
        description=f"Runs pipeline {pid} ({config.schedule_interval}); catchup={config.catchup}.",
        tags=tags,
    )


def catchup_candidates(partitions_def: TimeWindowPartitionsDefinition, latest: str) -> list[str]:
    """The partition `latest` and up to CATCHUP_LOOKBACK_PARTITIONS - 1 before it (none before
    the first partition), oldest first, found by walking back from `latest`: the cost does
    not grow with the number of partitions since start_date."""
    end = partitions_def.time_window_for_partition_key(latest).end
    try:
        starts = ticks_before(partitions_def.cron_schedule, end, CATCHUP_LOOKBACK_PARTITIONS, partitions_def.start)
    except PlanError:  # a cron our parser does not read: Dagster's own (slower) backward walk
        windows = partitions_def._reverse_iterate_time_windows(end.timestamp())  # noqa: SLF001
        starts = [w.start for w in islice(windows, CATCHUP_LOOKBACK_PARTITIONS) if w.start >= partitions_def.start]
        starts.reverse()
    # schedules run in UTC (no DST), where a partition key is its window start formatted
    return [start.strftime(partitions_def.fmt) for start in starts]


def missed_partitions(
    context: ScheduleEvaluationContext,
    partitions_def: TimeWindowPartitionsDefinition,
    sinks: list[AssetKey],
    latest: str,
    pipeline_id: str,
) -> list[str]:
    """Partitions among the last CATCHUP_LOOKBACK_PARTITIONS up to `latest` whose last steps
    are not all materialized and that no run of the pipeline has tried yet, oldest first, at
    most MAX_CATCHUP_RUNS_PER_TICK. The instance is asked about those partitions only.
    A failed partition is not requested again by the schedule (re-run it from the UI)."""
    from ml_pipelines.factory.assets import PIPELINE_TAG

    candidates = catchup_candidates(partitions_def, latest)
    if not candidates:
        return []
    wanted = set(candidates)
    done: set[str] | None = None
    for sink in sinks:
        materialized = set(
            context.instance.get_latest_storage_id_by_partition(
                sink, DagsterEventType.ASSET_MATERIALIZATION, partitions=wanted
            )
        )
        done = materialized if done is None else done & materialized
    done = done or set()
    tried = {
        record.dagster_run.tags.get(PARTITION_TAG)
        for record in context.instance.get_run_records(
            RunsFilter(tags={PIPELINE_TAG: pipeline_id, PARTITION_TAG: candidates})
        )
    }
    missing = [key for key in candidates if key not in done and key not in tried]
    return missing[:MAX_CATCHUP_RUNS_PER_TICK]
