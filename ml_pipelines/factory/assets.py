"""One pipeline config -> one asset per step (each its own op) plus its external waits.

A step's op runs one backend call, so a run's timeline, logs, retries and failures are per
step, a step whose upstream failed is not run, and independent steps run at the same time
(the environment's executor sets how many). Ops are built directly rather than through
`@asset`: what the decorator builds, without its per-call introspection (load time, see
docs/architecture.md).

`depends_on_past` follows Airflow: a step's partition runs when the latest earlier partition of
the same step that a run ever tried succeeded in its latest try, or when none was tried; it
waits while that try is queued or running and fails, not retried, when it failed
(`wait_for_previous_partition`). Which failures are retried: see `ml_pipelines.steps`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    DagsterEventType,
    DagsterInstance,
    Failure,
    In,
    MaterializeResult,
    Nothing,
    OpDefinition,
    Out,
    RetryPolicy,
    TimeWindowPartitionMapping,
    TimeWindowPartitionsDefinition,
)

from ml_pipelines.config.loader import LoadedPipeline
from ml_pipelines.config.session import LoadSession
from ml_pipelines.factory import describe
from ml_pipelines.factory.external import external_wait_spec
from ml_pipelines.factory.partitions import pipeline_partitions
from ml_pipelines.factory.pools import pool_of
from ml_pipelines.plan.model import TimeWindow
from ml_pipelines.plan.versions import step_code_version
from ml_pipelines.steps import StepFailed, StepPreconditionFailed
from ml_pipelines.steps.redact import Redactor
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
    return RetryPolicy(max_retries=args.retries, delay=args.retry_delay * 60)  # constant, as Airflow by default


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
        # max_active_runs: every run with a step of the pipeline holds a slot of its pool (factory/pools.py)
        pool=pool_of(pipeline.config),
    )
    return AssetsDefinition(
        node_def=op, keys_by_input_name=inputs, keys_by_output_name={output: spec.key}, specs=[spec]
    )


def _window(context: AssetExecutionContext) -> TimeWindow | None:
    if not context.has_partition_key:
        return None
    window = context.partition_time_window
    return TimeWindow(start=window.start, end=window.end)


@dataclass(frozen=True)
class PastAttempt:
    """The latest attempt of the latest earlier partition of an asset that was ever attempted."""

    partition: str
    outcome: str  # SUCCEEDED, FAILED or RUNNING
    run_id: str | None = None
    status: str | None = None  # the run's status when not SUCCEEDED


SUCCEEDED, FAILED, RUNNING = "succeeded", "failed", "running"
PAST_RUN_POLL_SECONDS = 15.0  # how often a held step looks at the previous partition's run
PAST_RUN_LOG_SECONDS = 120.0  # and how often it says so in the log (also on a status change)


def _partition_starts(keys, partitions_def: TimeWindowPartitionsDefinition) -> dict[str, datetime]:
    """Partition key -> the time it names (its window may start later in the day, e.g. at a
    06:00 cron: compare keys parsed alike); keys of another format are left out."""
    starts = {}
    for key in keys:
        try:
            starts[key] = datetime.strptime(key, partitions_def.fmt)
        except ValueError:
            continue
    return starts


def previous_attempt(
    instance: DagsterInstance, key: AssetKey, partitions_def: TimeWindowPartitionsDefinition, partition: str
) -> PastAttempt | None:
    """Airflow's depends_on_past, on Dagster's event log: the latest partition of `key` earlier than
    `partition` that a run planned (ASSET_MATERIALIZATION_PLANNED) or that was materialized, and how its
    latest attempt went. None when no earlier partition was ever attempted.

    Two grouped queries (latest event id per partition) whatever the number of partitions; the run
    of a latest attempt without a materialization is then looked up by id.
    """
    planned = instance.get_latest_storage_id_by_partition(key, DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    materialized = instance.get_latest_storage_id_by_partition(key, DagsterEventType.ASSET_MATERIALIZATION)
    limit = datetime.strptime(partition, partitions_def.fmt)
    starts = _partition_starts(planned.keys() | materialized.keys(), partitions_def)
    earlier = [(start, candidate) for candidate, start in starts.items() if start < limit]
    if not earlier:
        return None
    _, partition = max(earlier)
    if materialized.get(partition, -1) > planned.get(partition, -1):
        return PastAttempt(partition, SUCCEEDED)
    info = instance.get_latest_planned_materialization_info(key, partition)
    if info is None:  # the asset's history was wiped meanwhile
        return None
    record = instance.get_run_record_by_id(info.run_id)
    if record is not None and not record.dagster_run.is_finished:
        return PastAttempt(partition, RUNNING, info.run_id, record.dagster_run.status.value)
    # The run is over: read the partition's materialization again (it may have landed meanwhile).
    latest = instance.get_latest_storage_id_by_partition(key, DagsterEventType.ASSET_MATERIALIZATION, {partition})
    if latest.get(partition, -1) > info.storage_id:
        return PastAttempt(partition, SUCCEEDED)
    status = record.dagster_run.status.value if record is not None else "DELETED"
    return PastAttempt(partition, FAILED, info.run_id, status)


def _outcome_text(attempt: PastAttempt) -> str:
    if attempt.status == "SUCCESS":
        return "ended without materializing it (an upstream step failed or was not run)"
    if attempt.status == "CANCELED":
        return "was canceled"
    if attempt.status == "DELETED":
        return "was deleted before it materialized it"
    return "failed"


def wait_for_previous_partition(
    context: AssetExecutionContext,
    key: AssetKey,
    poll_seconds: float | None = None,
    log_seconds: float | None = None,
) -> PastAttempt | None:
    """depends_on_past: return when this partition may run; raise a non-retryable Failure when the
    previous attempted partition's latest attempt failed. While that attempt is queued or running,
    wait for it (as Airflow's scheduler does), logging what the step waits for."""
    poll = PAST_RUN_POLL_SECONDS if poll_seconds is None else poll_seconds
    every = PAST_RUN_LOG_SECONDS if log_seconds is None else log_seconds
    partitions_def = context.assets_def.partitions_def
    # the first partition of the run (a backfill may run a range in one run)
    first = context.partition_key_range.start
    instance = context.instance
    name = key.to_user_string()
    attempt = previous_attempt(instance, key, partitions_def, first)
    started = time.monotonic()
    logged: tuple[str | None, float] | None = None
    while attempt is not None and attempt.outcome == RUNNING:
        now = time.monotonic()
        if logged is None or logged[0] != attempt.status or now - logged[1] >= every:
            context.log.info(
                f"depends_on_past: waiting for run {attempt.run_id} ({attempt.status}) of {name} "
                f"partition {attempt.partition} to finish; waited {now - started:.0f}s"
            )
            logged = (attempt.status, now)
        time.sleep(poll)
        record = instance.get_run_record_by_id(attempt.run_id)
        if record is None or record.dagster_run.is_finished:
            attempt = previous_attempt(instance, key, partitions_def, first)
        else:
            attempt = replace(attempt, status=record.dagster_run.status.value)
    if attempt is None:
        context.log.info(f"depends_on_past: no earlier partition of {name} was ever run; this one runs")
    elif attempt.outcome == SUCCEEDED:
        context.log.info(f"depends_on_past: the previous run of {name} (partition {attempt.partition}) succeeded")
    else:
        raise Failure(
            description=(
                f"depends_on_past: the previous run of {name} (partition {attempt.partition}, "
                f"run {attempt.run_id}) {_outcome_text(attempt)}; rerun {attempt.partition} "
                "successfully, then rerun this partition"
            ),
            allow_retries=False,
        )
    return attempt


def _tag_run_with_pipeline(context: AssetExecutionContext, pipeline_id: str) -> None:
    """A run launched by hand names its pipeline in the runs list, as a scheduled one does."""
    if PIPELINE_TAG not in context.run.tags:
        context.instance.add_run_tags(context.run.run_id, {PIPELINE_TAG: pipeline_id})


def _plan_and_redactor(pipeline: LoadedPipeline, name: str, settings: Settings, window: TimeWindow | None):
    """The step's plan and the Redactor of its secrets.

    A plan error (templates, parameters, variables: the user's data) is a Failure not retried,
    masked with the secrets known by then."""
    from ml_pipelines.config.variables import load_variables
    from ml_pipelines.plan.resolve import resolve_step

    variables = None
    try:
        variables = load_variables(settings.paths.model_configs, settings.env)
        plan, resolver = resolve_step(
            pipeline,
            name,
            settings.env,
            window,
            paths=settings.paths,
            variables=variables,
            storage_root=settings.storage_root,
        )
    except ValueError as exc:
        redactor = Redactor.for_step(variables.values if variables is not None else {})
        description = redactor.mask(str(pipeline.error_for(name, exc)))
        raise Failure(description=description, allow_retries=False) from _masked_cause(redactor, exc)
    try:
        parameters = resolver.parameters  # already resolved, except for kinds whose plan does not use them
    except ValueError:  # unused by this kind's plan, so in nothing the step records
        parameters = {}
    return plan, Redactor.for_step(variables.values, parameters)


def _masked_cause(redactor: Redactor, exc: BaseException) -> BaseException | None:
    """`exc` masked, to chain a Failure from; None (no cause) when its text cannot be masked."""
    return exc if redactor.mask_exception(exc) else None


def run_step(
    context: AssetExecutionContext, pipeline: LoadedPipeline, name: str, settings: Settings
) -> MaterializeResult:
    """Plan the step for the run's window and run it on its backend; the step's secrets (see
    `steps.redact`) are masked in its log records, its materialization metadata and its failure."""
    from ml_pipelines.plan.resolve import is_noop_step

    config = pipeline.config
    step = config.step(name)
    key = step_key(config.pipeline_id, name)
    _tag_run_with_pipeline(context, config.pipeline_id)
    window = _window(context)
    if config.default_args.depends_on_past and window is not None:
        wait_for_previous_partition(context, key)
    if is_noop_step(pipeline, name):
        context.log.info(f"{name}: notebook_name is empty; nothing to run")
        return MaterializeResult(asset_key=key, metadata={"noop": True})
    plan, redactor = _plan_and_redactor(pipeline, name, settings, window)
    spec = spec_of(step)
    backend = getattr(context.resources, spec.resource_key)
    with redactor.masking_logs(context.log):
        context.log.info(f"{name}: running on {type(backend).__name__}")
        try:
            outcome = spec.run(backend, context, plan)
        except StepPreconditionFailed as exc:
            description = redactor.mask(f"step {name} cannot run: {exc}")
            raise Failure(description=description, allow_retries=False) from _masked_cause(redactor, exc)
        except StepFailed as exc:
            raise Failure(description=redactor.mask(f"step {name} failed: {exc}")) from _masked_cause(redactor, exc)
        except Exception as exc:
            if redactor.mask_exception(exc):
                raise
            description = redactor.mask(f"step {name} failed: {type(exc).__name__}: {exc}")
            raise Failure(description=description) from None
    return MaterializeResult(asset_key=key, metadata=redactor.mask_value(outcome.metadata))
