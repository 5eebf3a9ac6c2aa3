"""One pipeline config -> one asset per step (each its own op) plus its external waits.

A step's op runs one backend call, so a run's timeline, logs, retries and failures are per
step, a step whose upstream failed is not run, and independent steps run at the same time
(the environment's executor sets how many). Ops are built directly rather than through
`@asset`: what the decorator builds, without its per-call introspection (load time, see
docs/architecture.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Backoff,
    Failure,
    In,
    MaterializeResult,
    Nothing,
    OpDefinition,
    Out,
    RetryPolicy,
    TimeWindowPartitionMapping,
)

from ml_pipelines.config.loader import LoadedPipeline
from ml_pipelines.config.session import LoadSession
from ml_pipelines.factory import describe
from ml_pipelines.factory.external import external_wait_spec
from ml_pipelines.factory.partitions import pipeline_partitions
from ml_pipelines.plan.model import TimeWindow
from ml_pipelines.plan.versions import step_code_version
from ml_pipelines.steps import StepFailed
from ml_pipelines.steps.registry import spec_of

if TYPE_CHECKING:
    from ml_pipelines.environment import Settings

PIPELINE_TAG = "ml_pipelines/pipeline"


def step_key(pipeline_id: str, step_name: str) -> AssetKey:
    return AssetKey([pipeline_id, step_name])


def is_time_partitioned(step) -> bool:
    return spec_of(step).time_partitioned


def sink_keys(pipeline: LoadedPipeline) -> list[AssetKey]:
    """Keys of the steps nothing else in the pipeline depends on."""
    tasks = pipeline.config.tasks
    upstream = {name for t in tasks for name in t.upstream_task_name}
    return [step_key(pipeline.config.pipeline_id, t.name) for t in tasks if t.name not in upstream]


def _description(pipeline: LoadedPipeline, step, session: LoadSession | None) -> str:
    files = pipeline.files.get(step.name)
    doc = (type(step).__doc__ or "").strip()
    parts = [f"`{step.name}` of pipeline `{pipeline.config.pipeline_id}` ({pipeline.source.name}). {doc}"]
    if files is not None and files.main is not None and files.main.suffix == ".ipynb":
        summary = describe.notebook_summary(files.main, session)
        if summary:
            parts.append(summary)
    return "\n\n".join(parts)


def _retry_policy(pipeline: LoadedPipeline) -> RetryPolicy | None:
    """Airflow retries each task: every step's op gets the pipeline's policy."""
    args = pipeline.config.default_args
    if not args.retries:
        return None
    return RetryPolicy(max_retries=args.retries, delay=args.retry_delay * 60, backoff=Backoff.LINEAR)


def pipeline_definitions(
    pipeline: LoadedPipeline,
    settings: Settings,
    pipeline_sinks: dict[str, list[AssetKey]],
    session: LoadSession | None = None,
) -> list:
    """An asset per runnable step and the specs of the pipeline's external waits."""
    config = pipeline.config
    pid = config.pipeline_id
    partitions_def = pipeline_partitions(config)
    owners = describe.owners_of(config.default_args.owner)
    retry_policy = _retry_policy(pipeline)
    defs: list = []
    for step in config.tasks:
        name = step.name
        key = step_key(pid, name)
        deps = [AssetDep(step_key(pid, up)) for up in step.upstream_task_name]
        if not spec_of(step).runnable:  # an external wait: lineage, recorded by sensors
            defs.append(external_wait_spec(pipeline, step, deps, partitions_def, owners, pipeline_sinks))
            continue
        step_partitions = partitions_def if is_time_partitioned(step) else None
        if config.default_args.depends_on_past and step_partitions is not None:
            deps.append(AssetDep(key, partition_mapping=TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)))
        metadata = {"step_kind": step.kind.value, "config_file": str(pipeline.source)}
        files = pipeline.files.get(name)
        if files is not None and files.sql_files:
            metadata["tables_written"] = describe.tables_written(files.sql_files, session)
        spec = AssetSpec(
            key=key,
            deps=deps,
            group_name=pid,
            owners=owners,
            kinds=set(spec_of(step).dagster_kinds),
            description=_description(pipeline, step, session),
            code_version=step_code_version(pipeline, name, settings.paths, session),
            metadata=metadata,
            partitions_def=step_partitions,
        )
        defs.append(_step_asset(pipeline, name, spec, retry_policy, settings))
    return defs


def _step_asset(
    pipeline: LoadedPipeline, name: str, spec: AssetSpec, retry_policy: RetryPolicy | None, settings: Settings
) -> AssetsDefinition:
    resource_key = spec_of(pipeline.config.step(name)).resource_key

    def compute(context, _inputs):
        yield run_step(context, pipeline, name, settings)

    output = spec.key.to_python_identifier()
    # A Nothing input per upstream asset: in a run, the op waits for its upstream steps.
    inputs = {dep.asset_key.to_python_identifier(): dep.asset_key for dep in spec.deps}
    op = OpDefinition(
        compute_fn=compute,
        name=output,
        ins={name: In(Nothing) for name in inputs},
        outs={output: Out(Nothing, code_version=spec.code_version)},
        retry_policy=retry_policy,
        required_resource_keys={resource_key},
        tags={PIPELINE_TAG: pipeline.config.pipeline_id},
    )
    return AssetsDefinition(
        node_def=op, keys_by_input_name=inputs, keys_by_output_name={output: spec.key}, specs=[spec]
    )


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


def _tag_run_with_pipeline(context: AssetExecutionContext, pipeline_id: str) -> None:
    """A run launched by hand names its pipeline in the runs list, as a scheduled one does."""
    if PIPELINE_TAG not in context.run.tags:
        context.instance.add_run_tags(context.run.run_id, {PIPELINE_TAG: pipeline_id})


def run_step(
    context: AssetExecutionContext, pipeline: LoadedPipeline, name: str, settings: Settings
) -> MaterializeResult:
    from ml_pipelines.config.variables import load_variables
    from ml_pipelines.plan.resolve import is_noop_step, plan_step

    config = pipeline.config
    step = config.step(name)
    key = step_key(config.pipeline_id, name)
    _tag_run_with_pipeline(context, config.pipeline_id)
    window = _window(context)
    if config.default_args.depends_on_past and window is not None:
        _check_previous_partition(context, key)
    if is_noop_step(pipeline, name):
        context.log.info(f"{name}: notebook_name is empty; nothing to run")
        return MaterializeResult(asset_key=key, metadata={"noop": True})
    try:
        plan = plan_step(
            pipeline,
            name,
            settings.env,
            window,
            paths=settings.paths,
            variables=load_variables(settings.paths.model_configs, settings.env),
            storage_root=settings.storage_root,
        )
    except ValueError as exc:  # templates, parameters, variables: the user's data
        raise Failure(description=f"step {name}: {exc}") from exc
    spec = spec_of(step)
    backend = getattr(context.resources, spec.resource_key)
    context.log.info(f"{name}: running on {type(backend).__name__}")
    try:
        outcome = spec.run(backend, context, plan)
    except StepFailed as exc:
        raise Failure(description=f"step {name} failed: {exc}") from exc
    return MaterializeResult(asset_key=key, metadata=outcome.metadata)
