"""One pipeline config -> one multi_asset (a spec per step) plus its external waits.

A single `multi_asset` per pipeline keeps the code location fast to load (see
docs/architecture.md); `can_subset=True` still lets the UI materialize any one step.
"""

from __future__ import annotations

from dataclasses import dataclass
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Iterator

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Backoff,
    Failure,
    MaterializeResult,
    RetryPolicy,
    TimeWindowPartitionMapping,
    AssetsDefinition,
    Nothing,
    OpDefinition,
    Out,
)

from ml_pipelines.config.loader import LoadedPipeline
from ml_pipelines.config.paths import ProjectPaths
from ml_pipelines.config.schema import StepKind
from ml_pipelines.config.session import LoadSession
from ml_pipelines.factory import describe
from ml_pipelines.factory.external import external_wait_spec
from ml_pipelines.factory.partitions import cron_of, partitions_for
from ml_pipelines.plan.model import TimeWindow
from ml_pipelines.plan.versions import step_code_version
from ml_pipelines.steps import StepFailed

PIPELINE_TAG = "ml_pipelines/pipeline"

# step kind -> (resource key, backend method); one table instead of a chain of ifs.
RUNNERS: dict[StepKind, tuple[str, str]] = {
    StepKind.CONTAINER_IMAGE: ("container_images", "build"),
    StepKind.NOTEBOOK: ("notebooks", "run"),
    StepKind.GLUE: ("glue", "run"),
    StepKind.PYTHON_SCRIPT: ("python_scripts", "run"),
    StepKind.SQL: ("warehouse", "run"),
}


@dataclass(frozen=True)
class RunSettings:
    """What the asset bodies need at run time to resolve a step's plan."""

    env: str
    paths: ProjectPaths
    storage_root: Path | None


def step_key(pipeline_id: str, step_name: str) -> AssetKey:
    return AssetKey([pipeline_id, step_name])


def step_order(pipeline: LoadedPipeline) -> list[str]:
    graph = {t.name: set(t.upstream_task_name) for t in pipeline.config.tasks}
    return list(TopologicalSorter(graph).static_order())


# An image is defined by its kernel and requirements, not by a date: one unpartitioned asset
# that goes stale when they change. It still runs (or is reused) in each scheduled run.
TIME_INDEPENDENT_KINDS = frozenset({StepKind.CONTAINER_IMAGE})


def is_time_partitioned(step) -> bool:
    return step.kind not in TIME_INDEPENDENT_KINDS


def sink_keys(pipeline: LoadedPipeline) -> list[AssetKey]:
    """Keys of the steps nothing else in the pipeline depends on."""
    tasks = pipeline.config.tasks
    upstream = {name for t in tasks for name in t.upstream_task_name}
    return [step_key(pipeline.config.pipeline_id, t.name) for t in tasks if t.name not in upstream]


def _description(pipeline: LoadedPipeline, step, session: LoadSession | None) -> str:
    files = pipeline.files.get(step.name)
    doc = (type(step).__doc__ or "").strip()
    parts = [f"`{step.name}` of pipeline `{pipeline.config.pipeline_id}` ({pipeline.source.name}). {doc}"]
    if step.kind == StepKind.NOTEBOOK and files is not None:
        summary = describe.notebook_summary(files.main, session)
        if summary:
            parts.append(summary)
    return "\n\n".join(parts)


def _retry_policy(pipeline: LoadedPipeline) -> RetryPolicy | None:
    args = pipeline.config.default_args
    if not args.retries:
        return None
    return RetryPolicy(max_retries=args.retries, delay=args.retry_delay * 60, backoff=Backoff.LINEAR)


def pipeline_definitions(
    pipeline: LoadedPipeline,
    paths: ProjectPaths,
    run_settings: RunSettings,
    pipeline_sinks: dict[str, list[AssetKey]],
    session: LoadSession | None = None,
) -> list:
    """The multi_asset of a pipeline's runnable steps and the specs of its external waits."""
    config = pipeline.config
    pid = config.pipeline_id
    cron = cron_of(config.schedule_interval)
    start = config.default_args.start_date
    partitions_def = partitions_for(cron, start) if cron and start else None
    owners = describe.owners_of(config.default_args.owner)
    steps = {t.name: t for t in config.tasks}
    order = step_order(pipeline)

    waits, specs = [], []
    for name in order:
        step = steps[name]
        deps = [AssetDep(step_key(pid, up)) for up in step.upstream_task_name]
        if step.kind == StepKind.EXTERNAL_WAIT:
            waits.append(external_wait_spec(pipeline, step, deps, partitions_def, owners, pipeline_sinks))
            continue
        step_partitions = partitions_def if is_time_partitioned(step) else None
        if config.default_args.depends_on_past and step_partitions is not None:
            deps.append(
                AssetDep(step_key(pid, name), partition_mapping=TimeWindowPartitionMapping(start_offset=-1, end_offset=-1))
            )
        metadata = {"step_kind": step.kind.value, "config_file": str(pipeline.source)}
        files = pipeline.files.get(name)
        if step.kind == StepKind.SQL and files is not None:
            metadata["tables_written"] = describe.tables_written(files.sql_files, session)
        specs.append(
            AssetSpec(
                key=step_key(pid, name),
                deps=deps,
                group_name=pid,
                owners=owners,
                kinds=describe.KINDS[step.kind],
                description=_description(pipeline, step, session),
                code_version=step_code_version(pipeline, name, paths, session),
                metadata=metadata,
                skippable=True,
                partitions_def=step_partitions,
            )
        )
    if not specs:
        return waits

    def compute(context, _inputs):
        yield from run_steps(context, pipeline, order, run_settings)

    # What @multi_asset(specs=..., can_subset=True) builds, without the decorator's per-call
    # introspection: one op with an optional Nothing output per step (load time, see docs).
    op = OpDefinition(
        compute_fn=compute,
        name=pid,
        outs={
            s.key.to_python_identifier(): Out(Nothing, is_required=False, code_version=s.code_version)
            for s in specs
        },
        retry_policy=_retry_policy(pipeline),
        required_resource_keys={key for key, _ in RUNNERS.values()},
        tags={PIPELINE_TAG: pid},
    )
    run_pipeline = AssetsDefinition(
        node_def=op,
        keys_by_output_name={s.key.to_python_identifier(): s.key for s in specs},
        specs=specs,
        can_subset=True,
    )
    return [run_pipeline, *waits]


def _window(context: AssetExecutionContext) -> TimeWindow | None:
    if not context.has_partition_key:
        return None
    window = context.partition_time_window
    return TimeWindow(start=window.start, end=window.end)


def _check_previous_partition(context: AssetExecutionContext, key: AssetKey) -> None:
    """depends_on_past: a partition runs only after its own previous partition succeeded."""
    partitions_def = context.assets_def.partitions_def
    if context.partition_key == partitions_def.get_first_partition_key():
        return
    start = context.partition_time_window.start
    previous = partitions_def.get_partition_key_for_timestamp(start.timestamp(), end_closed=True)
    done = context.instance.get_materialized_partitions(key)
    if previous not in done:
        raise Failure(
            f"{key.to_user_string()}: depends_on_past is set and the previous partition {previous} "
            f"has not been materialized; run {previous} first"
        )


def _done_in_this_run(context: AssetExecutionContext, key: AssetKey) -> bool:
    """On a retry, steps this run already materialized are not run again."""
    if context.retry_number == 0:
        return False
    event = context.instance.get_latest_materialization_event(key)
    return event is not None and event.run_id == context.run_id


def run_steps(
    context: AssetExecutionContext, pipeline: LoadedPipeline, order: list[str], settings: RunSettings
) -> Iterator[MaterializeResult]:
    from ml_pipelines.config.variables import load_variables
    from ml_pipelines.plan.resolve import is_noop_step, plan_step

    config = pipeline.config
    pid = config.pipeline_id
    selected = context.selected_asset_keys
    window = _window(context)
    variables = load_variables(settings.paths.model_configs, settings.env)
    for name in order:
        step = config.step(name)
        key = step_key(pid, name)
        if step.kind == StepKind.EXTERNAL_WAIT or key not in selected:
            continue
        if config.default_args.depends_on_past and window is not None and is_time_partitioned(step):
            _check_previous_partition(context, key)
        if is_noop_step(pipeline, name):
            context.log.info(f"{name}: notebook_name is empty; nothing to run")
            yield MaterializeResult(asset_key=key, metadata={"noop": True})
            continue
        if _done_in_this_run(context, key):
            context.log.info(f"{name}: already materialized in this run; not run again")
            continue
        try:
            plan = plan_step(
                pipeline, name, settings.env, window,
                paths=settings.paths, variables=variables, storage_root=settings.storage_root,
            )
        except ValueError as exc:  # templates, parameters, variables: the user's data
            raise Failure(description=f"step {name}: {exc}") from exc
        resource_key, method = RUNNERS[step.kind]
        backend = getattr(context.resources, resource_key)
        context.log.info(f"{name}: running on {type(backend).__name__}")
        try:
            outcome = getattr(backend, method)(context, plan)
        except StepFailed as exc:
            raise Failure(description=f"step {name} failed: {exc}") from exc
        yield MaterializeResult(asset_key=key, metadata=outcome.metadata)
