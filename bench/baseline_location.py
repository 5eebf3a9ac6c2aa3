"""Hand-written Dagster code location of the benchmark's shape, with no config loading:
per pipeline a multi_asset of 5 steps + an external AssetSpec, a cron-partitioned
TimeWindowPartitionsDefinition shared per (cron, start), and one schedule on the
implicit asset job. BENCH_PIPELINES sets the count."""

import os
from datetime import datetime, timezone

from dagster import (
    AssetDep,
    AssetKey,
    AssetSpec,
    Definitions,
    MaterializeResult,
    RunRequest,
    ScheduleDefinition,
    TimeWindowPartitionsDefinition,
    multi_asset,
)

COUNT = int(os.environ.get("BENCH_PIPELINES", "10"))
CRONS = [f"{m} {h} * * *" for h in range(0, 24, 2) for m in (0, 15, 30, 45, 55)]
STEPS = [
    "ecr_container_creation",
    "sagemaker_notebook_job_processing_script",
    "glue_job_processing_script",
    "python_script_check",
    "write_to_snowflake",
]
_partitions: dict = {}


def partitions(cron: str, day: int) -> TimeWindowPartitionsDefinition:
    key = (cron, day)
    if key not in _partitions:
        _partitions[key] = TimeWindowPartitionsDefinition(
            cron_schedule=cron, start=datetime(2024, 1, day, tzinfo=timezone.utc), fmt="%Y-%m-%d", timezone="UTC"
        )
    return _partitions[key]


def pipeline(i: int):
    pid = f"bench_p{i:04d}_Daily"
    cron = CRONS[i % len(CRONS)]
    part = partitions(cron, 1 + i % 28)
    wait = AssetSpec(
        key=AssetKey([pid, "external_task_dag_status"]),
        deps=[AssetKey([f"bench_p{(i - 1) % COUNT:04d}_Daily", "write_to_snowflake"])],
        group_name=pid,
        partitions_def=part,
    )
    specs = []
    previous = [wait.key]
    for step in STEPS:
        key = AssetKey([pid, step])
        specs.append(
            AssetSpec(
                key=key,
                deps=[AssetDep(k) for k in previous],
                group_name=pid,
                owners=["bench@example.com"],
                kinds={"python"},
                code_version="1",
                skippable=True,
            )
        )
        previous = [key]

    @multi_asset(name=pid, specs=specs, can_subset=True, partitions_def=part)
    def run(context):
        for spec in specs:
            if spec.key in context.selected_asset_keys:
                yield MaterializeResult(asset_key=spec.key)

    keys = [s.key for s in specs]

    def evaluate(context):
        tick = context.scheduled_execution_time
        key = part.get_partition_key_for_timestamp(tick.timestamp(), end_closed=True)
        return RunRequest(run_key=f"{pid}:{key}", asset_selection=keys, partition_key=key)

    schedule = ScheduleDefinition(
        name=f"{pid}_schedule",
        cron_schedule=cron,
        job_name="__ASSET_JOB",
        execution_fn=evaluate,
        execution_timezone="UTC",
    )
    return [run, wait], schedule


assets, schedules = [], []
for n in range(COUNT):
    a, s = pipeline(n)
    assets.extend(a)
    schedules.append(s)
defs = Definitions(assets=assets, schedules=schedules)
