"""What the waits sensor needs of the loaded configs, worked out once when the code location
loads: each pipeline that has external waits, its waits (what each awaits, where, how), and
which of its steps run only after them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from dagster import AssetKey, TimeWindowPartitionsDefinition

from ml_pipelines.config.cron import cron_of
from ml_pipelines.config.loader import LoadedPipeline, Project
from ml_pipelines.config.schema import ExternalWaitStep
from ml_pipelines.config.waits import (
    AIRFLOW,
    DAGSTER,
    THIS,
    UNKNOWN,
    external_waits,
    project_ids,
    steps_after_waits,
    wait_source,
)
from ml_pipelines.factory.assets import is_time_partitioned, sink_keys, step_key
from ml_pipelines.factory.partitions import pipeline_partitions
from ml_pipelines.factory.schedules import run_tags
from ml_pipelines.plan.storage_layout import PlanError
from ml_pipelines.plan.windows import next_tick, previous_tick
from ml_pipelines.steps.registry import spec_of


@dataclass(frozen=True)
class Wait:
    """One `ExternalTaskSensor` step, resolved."""

    pipeline_id: str
    step: str
    key: AssetKey  # the wait's own (external) asset
    source: str  # this, dagster, airflow or unknown
    dag_id: str
    task_id: str | None
    allowed: frozenset[str]
    poke: float  # seconds
    timeout: float  # seconds, from the tick
    delta: timedelta
    awaited: tuple[AssetKey, ...] = ()  # this, dagster: the assets whose state counts
    awaited_ops: tuple[str | None, ...] = ()  # this: the op of each (tells failed from upstream_failed)
    awaited_partitions: TimeWindowPartitionsDefinition | None = None  # this: the awaited pipeline's
    problem: str | None = None  # why it cannot be checked (unknown id, Airflow not configured)

    @property
    def target(self) -> str:
        """What it waits on, for messages: `dag.task`, or `dag (whole pipeline)`."""
        where = {THIS: "", DAGSTER: " (another code location)", AIRFLOW: " (Airflow)", UNKNOWN: " (unknown)"}
        if self.source == DAGSTER:
            what = ", ".join(k.to_user_string() for k in self.awaited)
        else:
            what = f"{self.dag_id}.{self.task_id}" if self.task_id else f"{self.dag_id} (whole pipeline)"
        return what + where[self.source]

    @property
    def states_text(self) -> str:
        return ", ".join(sorted(self.allowed))


@dataclass(frozen=True)
class WaitingPipeline:
    """A pipeline with external waits."""

    pipeline_id: str
    schedule_name: str
    cron: str
    partitions_def: TimeWindowPartitionsDefinition
    catchup: bool
    waits: dict[str, Wait]  # by step name
    after: dict[str, frozenset[str]]  # runnable step downstream of waits -> those waits
    upstream: dict[str, tuple[str, ...]]  # step -> its upstream_task_name
    partitioned: frozenset[str]  # steps that are time-partitioned
    order: tuple[str, ...]  # step names, each after its upstream steps
    tags: dict[str, str] = field(default_factory=dict)  # the run tags of the pipeline's runs

    def key(self, step: str) -> AssetKey:
        return step_key(self.pipeline_id, step)

    def partition_start(self, partition: str) -> datetime:
        return self.partitions_def.time_window_for_partition_key(partition).start

    def partition_for_tick(self, tick: datetime) -> str | None:
        """The partition whose window ends at `tick` (the one the tick's run works on)."""
        try:
            start = previous_tick(self.cron, tick)
        except PlanError:
            return None
        if start < self.partitions_def.start:
            return None
        return start.strftime(self.partitions_def.fmt)


@dataclass
class TickClock:
    """The latest tick of a cron at or before a time, computed again only after the next tick."""

    cron: str
    latest: datetime | None = None
    upcoming: datetime | None = None

    def latest_tick(self, now: datetime) -> datetime | None:
        if self.upcoming is None or not (self.latest is not None and self.latest <= now < self.upcoming):
            try:
                self.upcoming = next_tick(self.cron, now, inclusive=False)
                self.latest = previous_tick(self.cron, now + timedelta(microseconds=1))
            except PlanError:
                self.latest = self.upcoming = None
        return self.latest


@dataclass
class WaitIndex:
    env: str
    pipelines: dict[str, WaitingPipeline]
    airflow_configured: bool
    clocks: dict[str, TickClock] = field(default_factory=dict, repr=False)

    @classmethod
    def from_project(cls, project: Project, env: str, airflow_configured: bool) -> WaitIndex:
        ids = project_ids(project)
        loaded = {p.pipeline_id: p for p in project.pipelines}
        pipelines = {}
        for pipeline in project.pipelines:
            steps = external_waits(pipeline)
            partitions_def = pipeline_partitions(pipeline.config)
            cron = cron_of(pipeline.config.schedule_interval)
            if not steps or partitions_def is None or cron is None:
                continue  # no ticks: its waits never open (its steps run by hand)
            try:
                pipelines[pipeline.pipeline_id] = _waiting_pipeline(
                    pipeline, steps, partitions_def, cron, ids, loaded, airflow_configured
                )
            except Exception:  # noqa: BLE001 - the factory's guarded build reports a pipeline that cannot be built
                continue
        return cls(env=env, pipelines=pipelines, airflow_configured=airflow_configured)

    def clock(self, pipeline: WaitingPipeline) -> TickClock:
        if pipeline.pipeline_id not in self.clocks:
            self.clocks[pipeline.pipeline_id] = TickClock(pipeline.cron)
        return self.clocks[pipeline.pipeline_id]


def _waiting_pipeline(
    pipeline: LoadedPipeline,
    steps: list[ExternalWaitStep],
    partitions_def: TimeWindowPartitionsDefinition,
    cron: str,
    ids: set[str],
    loaded: dict[str, LoadedPipeline],
    airflow_configured: bool,
) -> WaitingPipeline:
    config = pipeline.config
    pid = config.pipeline_id
    runnable = {t.name for t in config.tasks if spec_of(t).runnable}
    after = {name: ws for name, ws in steps_after_waits(config).items() if name in runnable}
    waits = {s.name: _wait(pipeline, s, ids, loaded, airflow_configured) for s in steps}
    return WaitingPipeline(
        pipeline_id=pid,
        schedule_name=f"{pid}_schedule",
        cron=cron,
        partitions_def=partitions_def,
        catchup=bool(config.catchup),
        waits=waits,
        after=after,
        upstream={t.name: tuple(t.upstream_task_name) for t in config.tasks},
        partitioned=frozenset(t.name for t in config.tasks if spec_of(t).runnable and is_time_partitioned(t)),
        order=tuple(config.step_order()),
        tags=run_tags(pipeline),
    )


def _wait(
    pipeline: LoadedPipeline,
    step: ExternalWaitStep,
    ids: set[str],
    loaded: dict[str, LoadedPipeline],
    airflow_configured: bool,
) -> Wait:
    details = step.external_dag_details
    source = wait_source(details, ids, airflow_configured)
    base = {
        "pipeline_id": pipeline.pipeline_id,
        "step": step.name,
        "key": step_key(pipeline.pipeline_id, step.name),
        "source": source,
        "dag_id": details.external_dag_id,
        "task_id": details.external_task_id,
        "allowed": frozenset(details.allowed_states),
        "poke": float(details.poke_interval),
        "timeout": float(details.timeout),
        "delta": details.execution_delta,
    }
    if source == THIS:
        awaited = loaded.get(details.external_dag_id)
        if awaited is None:
            return Wait(**base, problem=f"{details.external_dag_id} is not a valid pipeline of this code location")
        if details.external_task_id:
            names = {t.name: t for t in awaited.config.tasks}
            task = names.get(details.external_task_id)
            if task is None:
                return Wait(**base, problem=f"{details.external_dag_id} has no step {details.external_task_id}")
            keys = [step_key(awaited.pipeline_id, task.name)]
        else:
            keys = sink_keys(awaited)
        tasks = {step_key(awaited.pipeline_id, t.name): t for t in awaited.config.tasks}
        # a whole pipeline: its last time-partitioned steps (an image step has no date)
        dated = [k for k in keys if k in tasks and spec_of(tasks[k]).runnable and is_time_partitioned(tasks[k])]
        keys = dated or keys
        ops = tuple(k.to_python_identifier() if k in tasks and spec_of(tasks[k]).runnable else None for k in keys)
        return Wait(
            **base, awaited=tuple(keys), awaited_ops=ops, awaited_partitions=pipeline_partitions(awaited.config)
        )
    if source == DAGSTER:
        keys = details.asset_keys or [f"{details.external_dag_id}/{details.external_task_id}"]
        return Wait(**base, awaited=tuple(AssetKey.from_user_string(k) for k in keys))
    if source == AIRFLOW and not airflow_configured:
        return Wait(**base, problem="Airflow is not configured (ML_PIPELINES_AIRFLOW_URL is not set)")
    if source == UNKNOWN:
        return Wait(
            **base,
            problem=(
                f"{details.external_dag_id} is not a pipeline of this code location and ML_PIPELINES_AIRFLOW_URL "
                "is not set"
            ),
        )
    return Wait(**base)


@lru_cache(maxsize=4096)
def awaited_partition(wait: Wait, own: TimeWindowPartitionsDefinition, partition: str) -> tuple[str | None, str]:
    """The awaited partition key for this pipeline's `partition` (None: the awaited asset is not
    partitioned), and what it names for messages; ValueError when no awaited partition starts
    at the shifted time (the wait can never be satisfied for it)."""
    start = own.time_window_for_partition_key(partition).start - wait.delta
    if wait.source == THIS:
        theirs = wait.awaited_partitions
        if theirs is None:
            return None, "its latest run (not partitioned)"
        key = start.strftime(theirs.fmt)
        try:
            window = theirs.time_window_for_partition_key(key)
        except Exception:  # noqa: BLE001 - Dagster raises several kinds for a key out of range
            window = None
        if window is None or window.start != start or start < theirs.start:
            raise ValueError(f"no partition of {wait.dag_id} starts at {start:%Y-%m-%d %H:%M} UTC")
        return key, key
    # another code location: Dagster's key formats (dates for daily and coarser, date-hour:minute finer)
    key = start.strftime(own.fmt)
    return key, key


def logical_date(wait: Wait, own: TimeWindowPartitionsDefinition, partition: str) -> datetime:
    """The awaited Airflow run's logical date for this pipeline's `partition`."""
    return (own.time_window_for_partition_key(partition).start - wait.delta).astimezone(timezone.utc)
