"""Parameterised builder of benchmark code locations (same shape as bench/baseline_location.py).

variants.py names option sets (VARIANTS); location.py builds the one BENCH_VARIANT names and
exposes `defs`. BENCH_PIPELINES sets the pipeline count (default 10).

Shape per pipeline i: an external wait AssetSpec [pid, external_task_dag_status] depending on
pipeline i-1's write_to_snowflake, then 5 runnable steps in a chain; cron time partitions shared
per (cron, start day) (60 crons x 28 start days -> 420 distinct at 1,000 pipelines); one schedule.

Options (defaults = the baseline):
  wait        "full" | "nopart" (no partitions_def) | "nodep" (no cross-pipeline dep) | "none" |
              "onedef" (partitioned, but all waits in one AssetsDefinition(specs=...) instead of
              bare AssetSpecs, which Definitions groups into one AssetsDefinition per partitions def)
  construct   "multi_asset" (decorator) | "direct" (OpDefinition + AssetsDefinition(specs=...),
              no op inputs) | "direct_shared_fn" (direct, one module-level compute fn reading the
              pipeline from the op's tags)
  grouping    "pipeline" (one AssetsDefinition per pipeline) | "partitions" (one per distinct
              partitions def, holding all its pipelines' steps) | "cron" (one per cron, specs of
              several partitions defs, can_subset) | "all" (one AssetsDefinition for every step)
  partitions  "tw" (TimeWindowPartitionsDefinition per (cron, start)) | "tw_cron" (one per cron,
              common start 2024-01-01) | "daily" (DailyPartitionsDefinition(hour/minute offset))
              | "none"
  schedules   "pipeline" (ScheduleDefinition per pipeline on __ASSET_JOB) | "cron" (one per
              distinct cron, RunRequests for all its pipelines) | "none" | "target" (per pipeline
              ScheduleDefinition(target=<its assets>): an anonymous asset job each)
  sched_extras  add tags + description to each schedule
  realistic   per-spec description/metadata/tags like the factory, op_tags, retry_policy,
              required_resource_keys (needs resources=True to validate); "lean": the same without
              per-spec tags and with one metadata entry
  resources   bind 5 resources through Definitions(resources=...)
  gc_mode     None | "freeze" (gc.freeze() after building: the definitions are never scanned
              by the cyclic GC again) | "threshold" (gc.set_threshold(50_000, 50, 100) for the
              whole process) | "freeze_threshold" (both) | "threshold:A,B,C" | "disable" (no cyclic
              GC for the rest of the process: lower bound)
"""

from __future__ import annotations

import gc
import os
from datetime import datetime, timezone

from dagster import (
    AssetDep,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Backoff,
    ConfigurableResource,
    DailyPartitionsDefinition,
    Definitions,
    MaterializeResult,
    Nothing,
    OpDefinition,
    Out,
    RetryPolicy,
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
WAIT = "external_task_dag_status"
PIPELINE_TAG = "ml_pipelines/pipeline"
CONCURRENCY_TAG = "ml_pipelines/max_active_runs_1"
RESOURCE_KEYS = ["container_images", "notebooks", "glue", "python_scripts", "warehouse"]


class StepRunner(ConfigurableResource):
    """Stand-in for a step backend: records what it ran."""

    name: str = "local"

    def run(self, context, key):
        return {"runner": self.name, "key": key.to_user_string()}


def pid_of(i: int) -> str:
    return f"bench_p{i % COUNT:04d}_Daily"


def cron_of(i: int) -> str:
    return CRONS[i % len(CRONS)]


def day_of(i: int) -> int:
    return 1 + i % 28


def run_tags(pid: str) -> dict[str, str]:
    return {PIPELINE_TAG: pid, CONCURRENCY_TAG: pid}


def step_keys(pid: str) -> list[AssetKey]:
    return [AssetKey([pid, s]) for s in STEPS]


_partitions: dict = {}


def partitions(mode: str, cron: str, day: int):
    if mode == "none":
        return None
    key = (mode, cron, 1 if mode == "tw_cron" else day)
    if key not in _partitions:
        start = datetime(2024, 1, key[2], tzinfo=timezone.utc)
        if mode == "daily":
            minute, hour = (int(x) for x in cron.split()[:2])
            _partitions[key] = DailyPartitionsDefinition(
                start_date=start, minute_offset=minute, hour_offset=hour, timezone="UTC", fmt="%Y-%m-%d"
            )
        else:
            _partitions[key] = TimeWindowPartitionsDefinition(
                cron_schedule=cron, start=start, fmt="%Y-%m-%d", timezone="UTC"
            )
    return _partitions[key]


def wait_spec(i: int, mode: str, part, realistic: bool) -> AssetSpec | None:
    if mode == "none":
        return None
    pid = pid_of(i)
    extra = {}
    if realistic:
        extra = dict(
            owners=["bench@example.com"],
            kinds={"sensor"},
            description=f"Waits for {pid_of(i - 1)}.write_to_snowflake; recorded by sensors.",
            metadata={"step_kind": "external_wait", "external_dag_id": pid_of(i - 1)},
        )
    return AssetSpec(
        key=AssetKey([pid, WAIT]),
        deps=[] if mode == "nodep" else [AssetKey([pid_of(i - 1), "write_to_snowflake"])],
        group_name=pid,
        partitions_def=None if mode == "nopart" else part,
        **extra,
    )


def step_specs(i: int, wait: AssetSpec | None, part, realistic: bool, with_part: bool) -> list[AssetSpec]:
    pid = pid_of(i)
    specs = []
    previous = [wait.key] if wait is not None else []
    for step in STEPS:
        key = AssetKey([pid, step])
        extra = {}
        if realistic == "lean":  # no per-asset tags (group_name already says the pipeline), less metadata
            extra = dict(description=f"`{step}` of pipeline `{pid}` (bench config).", metadata={"step_kind": step})
        elif realistic:
            extra = dict(
                description=f"`{step}` of pipeline `{pid}` (bench config).",
                metadata={"step_kind": step, "config_file": f"/x/{pid}.yml"},
                tags={PIPELINE_TAG: pid},
            )
        if with_part:
            extra["partitions_def"] = part
        specs.append(
            AssetSpec(
                key=key,
                deps=[AssetDep(k) for k in previous],
                group_name=pid,
                owners=["bench@example.com"],
                kinds={"python"},
                code_version="1",
                skippable=True,
                **extra,
            )
        )
        previous = [key]
    return specs


def _materialize(context, specs_in_order):
    """Yields in topological order (selected_asset_keys is a set)."""
    selected = context.selected_asset_keys
    if os.environ.get("SHAPES_PRINT_CONTEXT"):
        print("CONTEXT TYPE", type(context).__name__, context.partition_key, context.has_partition_key)
    for spec in specs_in_order:
        if spec.key in selected:
            yield MaterializeResult(asset_key=spec.key)


def _op_options(realistic: bool, pid: str | None) -> dict:
    if not realistic:
        return {}
    opts = dict(
        retry_policy=RetryPolicy(max_retries=1, delay=300, backoff=Backoff.LINEAR),
        required_resource_keys=set(RESOURCE_KEYS),
    )
    if pid is not None:
        opts["tags"] = {PIPELINE_TAG: pid}  # op tags (multi_asset: op_tags)
    return opts


def assets_def(name: str, specs: list[AssetSpec], part, construct: str, realistic: bool, pid: str | None):
    if construct == "multi_asset":
        opts = _op_options(realistic, pid)
        if "tags" in opts:
            opts["op_tags"] = opts.pop("tags")

        @multi_asset(name=name, specs=specs, can_subset=True, partitions_def=part, **opts)
        def run(context):
            yield from _materialize(context, specs)

        return run
    # direct: one op, one Nothing output per spec, no inputs (deps live on the specs)
    outs = {s.key.to_python_identifier(): Out(Nothing, is_required=False, code_version=s.code_version) for s in specs}
    keys_by_output = {s.key.to_python_identifier(): s.key for s in specs}

    # a plain compute_fn (not @op-decorated) is called as fn(context, inputs)
    if construct == "direct_shared_fn":
        fn = _shared_compute
    else:

        def fn(context, _inputs):
            yield from _materialize(context, specs)

    op = OpDefinition(compute_fn=fn, name=name, outs=outs, **_op_options(realistic, pid))
    return AssetsDefinition(node_def=op, keys_by_output_name=keys_by_output, specs=specs, can_subset=True)


def _shared_compute(context, _inputs):
    order = {s: n for n, s in enumerate(STEPS)}
    for key in sorted(context.selected_asset_keys, key=lambda k: (k.path[0], order[k.path[-1]])):
        yield MaterializeResult(asset_key=key)


def build(
    *,
    wait="full",
    construct="multi_asset",
    grouping="pipeline",
    partitions_mode="tw",
    schedules="pipeline",
    sched_extras=False,
    realistic=False,
    resources=False,
    count=None,
    gc_mode=None,
) -> Definitions:
    if gc_mode in ("threshold", "freeze_threshold"):
        gc.set_threshold(50_000, 50, 100)
    elif gc_mode and gc_mode.startswith("threshold:"):
        gc.set_threshold(*(int(x) for x in gc_mode.split(":")[1].split(",")))
    elif gc_mode == "disable":
        gc.disable()
    n = COUNT if count is None else count
    assets, scheds = [], []
    groups: dict = {}  # group key -> [specs of a pipeline]
    waits: list = []
    for i in range(n):
        pid = pid_of(i)
        part = partitions(partitions_mode, cron_of(i), day_of(i))
        w = wait_spec(i, "full" if wait == "onedef" else wait, part, realistic)
        if w is not None:
            (waits if wait == "onedef" else assets).append(w)
        if grouping == "pipeline":
            specs = step_specs(i, w, part, realistic, with_part=construct != "multi_asset")
            assets.append(assets_def(pid, specs, part, construct, realistic, pid))
        else:
            specs = step_specs(i, w, part, realistic, with_part=True)
            gkey = {"partitions": part, "cron": cron_of(i), "all": 0}[grouping]
            groups.setdefault(gkey, []).append(specs)
    if waits:  # one external AssetsDefinition for every wait, whatever its partitions def
        assets.append(AssetsDefinition(specs=waits))
    for g, members in enumerate(groups.values()):
        specs = [s for m in members for s in m]
        assets.append(assets_def(f"bench_group_{g:04d}", specs, None, construct, realistic, None))

    if schedules == "pipeline":
        for i in range(n):
            scheds.append(pipeline_schedule(i, partitions(partitions_mode, cron_of(i), day_of(i)), sched_extras))
    elif schedules == "target":
        for i in range(n):
            pid = pid_of(i)
            scheds.append(
                ScheduleDefinition(
                    name=f"{pid}_schedule",
                    cron_schedule=cron_of(i),
                    target=step_keys(pid),
                    execution_timezone="UTC",
                    tags=run_tags(pid),
                )
            )
    elif schedules == "cron":
        by_cron: dict = {}
        for i in range(n):
            by_cron.setdefault(cron_of(i), []).append(i)
        for cron, members in by_cron.items():
            scheds.append(cron_schedule(cron, members, partitions_mode, sched_extras))

    kwargs = {}
    if resources:
        kwargs["resources"] = {k: StepRunner(name=k) for k in RESOURCE_KEYS}
    defs = Definitions(assets=assets, schedules=scheds, **kwargs)
    if gc_mode in ("freeze", "freeze_threshold"):
        gc.collect()
        gc.freeze()
    return defs


def pipeline_schedule(i: int, part, extras: bool) -> ScheduleDefinition:
    pid = pid_of(i)
    keys = step_keys(pid)
    tags = run_tags(pid)

    def evaluate(context):
        if part is None:
            return RunRequest(asset_selection=keys, tags=tags)
        tick = context.scheduled_execution_time
        key = part.get_partition_key_for_timestamp(tick.timestamp(), end_closed=True)
        return RunRequest(run_key=f"{pid}:{key}", asset_selection=keys, partition_key=key, tags=tags)

    extra = {}
    if extras:
        extra = dict(tags=tags, description=f"Runs pipeline {pid} ({cron_of(i)}); catchup=False.")
    return ScheduleDefinition(
        name=f"{pid}_schedule",
        cron_schedule=cron_of(i),
        job_name="__ASSET_JOB",
        execution_fn=evaluate,
        execution_timezone="UTC",
        **extra,
    )


def cron_schedule(cron: str, members: list[int], partitions_mode: str, extras: bool) -> ScheduleDefinition:
    plan = [(pid_of(i), step_keys(pid_of(i)), partitions(partitions_mode, cron, day_of(i))) for i in members]

    def evaluate(context):
        ts = context.scheduled_execution_time.timestamp()
        out = []
        for pid, keys, part in plan:
            if part is None:
                out.append(RunRequest(run_key=pid, asset_selection=keys, tags=run_tags(pid)))
                continue
            key = part.get_partition_key_for_timestamp(ts, end_closed=True)
            out.append(RunRequest(run_key=f"{pid}:{key}", asset_selection=keys, partition_key=key, tags=run_tags(pid)))
        return out

    name = "cron_" + cron.replace(" ", "_").replace("*", "x")
    extra = {"description": f"{len(members)} pipelines on {cron}"} if extras else {}
    return ScheduleDefinition(
        name=name, cron_schedule=cron, job_name="__ASSET_JOB", execution_fn=evaluate, execution_timezone="UTC", **extra
    )
