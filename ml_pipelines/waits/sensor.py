"""One sensor for the code location runs every external wait (`type: ExternalTaskSensor`).

At a pipeline's cron tick (its schedule running), the schedule launches the steps that are
not downstream of a wait (factory/__init__.py leaves the others out of its run), and this
sensor opens the pipeline's waits for that tick's partition P. Each tick of the sensor:

1. opens the waits of every pipeline whose tick passed since its last evaluation (and, for
   `catchup: true`, of every older partition the schedule launched a run for);
2. checks each open wait whose `poke_interval` has passed since its last check (or whose
   `timeout`, counted from the tick, is reached): the awaited step, or every last step of the
   awaited pipeline, in its partition for P shifted back by `execution_delta`, in this
   instance's event log (this code location, another one) or in Airflow (REST API);
3. a wait whose state is in `allowed_states` is satisfied: a runless materialization of the
   wait's asset for P and its check `wait_satisfied` passed for P. Past its timeout it fails:
   the check failed for P, an observation saying why, and the pipeline's failure alert
   (`notifier`, as alerts/ sends them);
4. launches, for each partition, the steps whose waits are all satisfied, once the steps
   they need from the tick's run have materialized (a run of the implicit asset job with
   the pipeline's run tags, run key `<pipeline>:<P>:after_waits:<steps>`); steps behind a
   failed wait, or behind a step that did not materialize, are not run (an observation says
   which and why).

While a wait is open its asset shows for P an observation saying what it waits on and
since when (and another when the awaited state seen changes), and the sensor's tick lists
the open waits. Nothing holds a run worker while waiting. Runs launched by hand are not
gated: they run what they select, as in Dagster generally.

The cursor (JSON) holds the open partitions and, for two days, those resolved. The work of
a tick follows the waits that are due, not the number of pipelines: per due wait one or two
event-log reads (or a share of a few Airflow requests), and per tick one read of the
schedules' states.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    AssetSpec,
    DagsterInstance,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from dagster._core.storage.tags import PARTITION_NAME_TAG, SCHEDULE_NAME_TAG
from dagster._time import get_current_timestamp

from ml_pipelines.config.waits import AIRFLOW, THIS, wait_warnings
from ml_pipelines.factory.assets import PIPELINE_TAG
from ml_pipelines.factory.schedules import IMPLICIT_ASSET_JOB
from ml_pipelines.waits.airflow import AirflowError, AirflowQuery, AirflowWaits, airflow_settings_from_env
from ml_pipelines.waits.index import Wait, WaitIndex, WaitingPipeline, awaited_partition, logical_date
from ml_pipelines.waits.states import asset_states, combined_state, describe_state, latest_attempt_ids

if TYPE_CHECKING:
    from ml_pipelines.alerts.notifier import Notifier
    from ml_pipelines.alerts.sensors import AlertIndex
    from ml_pipelines.config.loader import Project
    from ml_pipelines.environment import Settings

log = logging.getLogger("ml_pipelines.waits")

WAIT_SENSOR_NAME = "ml_pipelines_waits"
WAIT_CHECK_NAME = "wait_satisfied"  # the check on each wait's asset, per partition (recorded by the sensor)
WAITING, SATISFIED, FAILED = "waiting", "satisfied", "failed"
DEFAULT_INTERVAL_SECONDS, MIN_INTERVAL_SECONDS = 30, 5
TICK_BUDGET_SECONDS = 40.0  # checks stop after this long (Dagster stops a tick at 60 s); the rest next tick
MAX_LAUNCHES_PER_TICK = 200  # runs requested by one tick; the rest next tick
# Asset events one tick hands the daemon (it writes each: about 10 ms on SQLite); checks stop there, the rest next tick
MAX_EVENTS_PER_TICK = 1_000
BEFORE_GRACE_SECONDS = 600.0  # how long after the tick the tick's own run may take to appear
DONE_MEMORY_SECONDS = 2 * 86_400  # resolved partitions remembered (not opened again)
SUMMARY_LISTED = 10  # open waits named in a tick's summary
MAX_LOAD_WARNINGS = 10  # wait warnings logged one by one when the code location loads (every process loads it)
LAUNCHED_BY_TAG = "ml_pipelines/launched_after_waits"  # on the runs this sensor launches: the waits
IN_PROGRESS = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# --- cursor ----------------------------------------------------------------------------------


@dataclass
class WaitState:
    status: str  # waiting, satisfied, failed
    next: float  # when to check next (epoch seconds)
    seen: str | None = None  # the awaited state seen last (text)

    def to_json(self) -> list:
        return [self.status, self.next, self.seen]


@dataclass
class Entry:
    """One partition of one pipeline whose waits are open or whose steps are not launched yet."""

    pipeline_id: str
    partition: str
    tick: float  # the cron tick that opened it (epoch seconds); timeouts count from it
    waits: dict[str, WaitState]
    launched: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)  # step -> why it will not run

    @property
    def key(self) -> str:
        return f"{self.pipeline_id}|{self.partition}"

    def to_json(self) -> dict:
        return {
            "p": self.pipeline_id,
            "k": self.partition,
            "t": self.tick,
            "w": {s: w.to_json() for s, w in self.waits.items()},
            "l": self.launched,
            "d": self.dropped,
        }

    @classmethod
    def from_json(cls, data: dict) -> Entry:
        return cls(
            pipeline_id=str(data["p"]),
            partition=str(data["k"]),
            tick=float(data["t"]),
            waits={str(s): WaitState(str(w[0]), float(w[1]), w[2]) for s, w in data["w"].items()},
            launched=[str(s) for s in data.get("l", [])],
            dropped={str(k): str(v) for k, v in data.get("d", {}).items()},
        )


@dataclass
class WaitCursor:
    at: float  # the previous evaluation: ticks after it open waits
    runs_at: float  # catchup: scheduled runs created after it open waits
    open: dict[str, Entry] = field(default_factory=dict)
    done: dict[str, float] = field(default_factory=dict)  # resolved entry key -> when

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": 1,
                "at": self.at,
                "runs_at": self.runs_at,
                "open": [e.to_json() for e in self.open.values()],
                "done": self.done,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | None) -> WaitCursor | None:
        if not text:
            return None
        try:
            data = json.loads(text)
            if data.get("v") != 1:
                return None
            entries = [Entry.from_json(e) for e in data["open"]]
            return cls(
                at=float(data["at"]),
                runs_at=float(data["runs_at"]),
                open={e.key: e for e in entries},
                done={str(k): float(v) for k, v in data.get("done", {}).items()},
            )
        except (ValueError, TypeError, KeyError, AttributeError, IndexError):
            return None


# --- one evaluation --------------------------------------------------------------------------


@dataclass
class WaitsResult:
    cursor: str
    run_requests: list[RunRequest]
    asset_events: list[AssetMaterialization | AssetObservation]
    summary: str


@dataclass
class _Pass:
    instance: DagsterInstance
    index: WaitIndex
    cursor: WaitCursor
    now: float
    ui_url: str
    log: logging.Logger
    alert: Callable[[Wait, Entry, str], None]
    airflow: AirflowWaits | None
    budget_end: float
    run_requests: list[RunRequest] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)
    opened: int = 0
    satisfied: int = 0
    failed: int = 0
    checked: int = 0
    deferred: int = 0


def evaluate_waits(
    instance: DagsterInstance,
    cursor_text: str | None,
    index: WaitIndex,
    *,
    now: float | None = None,
    running_schedules: set[str] | None = None,
    airflow: AirflowWaits | None = None,
    alert: Callable[[Wait, Entry, str], None] | None = None,
    log_: logging.Logger = log,
    ui_url: str = "http://127.0.0.1:3000",
    budget_seconds: float = TICK_BUDGET_SECONDS,
) -> WaitsResult:
    """One tick of the waits sensor (see the module doc). `running_schedules`: the names of the
    schedules that are running (None: all, as in a test context without a code location)."""
    now = get_current_timestamp() if now is None else now
    cursor = WaitCursor.from_json(cursor_text)
    if cursor is None:
        cursor = WaitCursor(at=now, runs_at=now)
        n = sum(len(p.waits) for p in index.pipelines.values())
        return WaitsResult(cursor.to_json(), [], [], f"started: {n} wait(s) open at their pipelines' ticks from now on")
    p = _Pass(
        instance=instance,
        index=index,
        cursor=cursor,
        now=now,
        ui_url=ui_url.rstrip("/"),
        log=log_,
        alert=alert or (lambda *_: None),
        airflow=airflow,
        budget_end=time.monotonic() + budget_seconds,
    )
    _open_at_ticks(p, running_schedules)
    _open_catchup_runs(p, running_schedules)
    _check_due(p)
    _launch_ready(p)
    for key, when in list(cursor.done.items()):
        if now - when > DONE_MEMORY_SECONDS:
            del cursor.done[key]
    cursor.at = now
    return WaitsResult(cursor.to_json(), p.run_requests, p.events, _summary(p))


def _open(p: _Pass, pipeline: WaitingPipeline, partition: str, tick: float) -> None:
    key = f"{pipeline.pipeline_id}|{partition}"
    if key in p.cursor.open or key in p.cursor.done:
        return
    entry = Entry(
        pipeline.pipeline_id,
        partition,
        tick,
        waits={step: WaitState(WAITING, p.now) for step in pipeline.waits},
    )
    p.cursor.open[key] = entry
    p.opened += 1
    for wait in pipeline.waits.values():
        p.events.append(_observation(p, wait, entry, WAITING, None))


def _open_at_ticks(p: _Pass, running: set[str] | None) -> None:
    now = datetime.fromtimestamp(p.now, timezone.utc)
    for pipeline in p.index.pipelines.values():
        if running is not None and pipeline.schedule_name not in running:
            continue
        tick = p.index.clock(pipeline).latest_tick(now)
        if tick is None or tick.timestamp() <= p.cursor.at:
            continue
        partition = pipeline.partition_for_tick(tick)
        if partition is not None:
            _open(p, pipeline, partition, tick.timestamp())


def _open_catchup_runs(p: _Pass, running: set[str] | None) -> None:
    """`catchup: true`: the schedule also launches older partitions; open their waits too."""
    by_schedule = {
        w.schedule_name: w
        for w in p.index.pipelines.values()
        if w.catchup and (running is None or w.schedule_name in running)
    }
    if not by_schedule:
        p.cursor.runs_at = p.now
        return
    created_after = datetime.fromtimestamp(p.cursor.runs_at, timezone.utc)
    records = p.instance.get_run_records(
        RunsFilter(tags={SCHEDULE_NAME_TAG: sorted(by_schedule)}, created_after=created_after), ascending=True
    )
    latest = p.cursor.runs_at
    for record in records:
        run = record.dagster_run
        pipeline = by_schedule.get(run.tags.get(SCHEDULE_NAME_TAG, ""))
        partition = run.tags.get(PARTITION_NAME_TAG)
        if pipeline is not None and partition:
            _open(p, pipeline, partition, record.create_timestamp.timestamp())
        latest = max(latest, record.create_timestamp.timestamp())
    p.cursor.runs_at = latest


# --- checks ----------------------------------------------------------------------------------


def _deadline(wait: Wait, entry: Entry) -> float:
    return entry.tick + wait.timeout


def _check_due(p: _Pass) -> None:
    due: list[tuple[Entry, Wait, WaitState]] = []
    for entry in p.cursor.open.values():
        pipeline = p.index.pipelines.get(entry.pipeline_id)
        if pipeline is None:
            continue
        for step, state in entry.waits.items():
            wait = pipeline.waits.get(step)
            if wait is not None and state.status == WAITING and p.now >= min(state.next, _deadline(wait, entry)):
                due.append((entry, wait, state))
    due.sort(key=lambda d: _deadline(d[1], d[0]))
    airflow_due = [d for d in due if d[1].source == AIRFLOW and d[1].problem is None]
    airflow_states, airflow_error = _airflow_states(p, airflow_due)
    memo = _dagster_states(p, [d for d in due if d[1].source != AIRFLOW and d[1].problem is None])
    for entry, wait, state in due:
        if time.monotonic() > p.budget_end or len(p.events) >= MAX_EVENTS_PER_TICK:
            p.deferred += 1
            continue
        p.checked += 1
        pipeline = p.index.pipelines[entry.pipeline_id]
        seen, detail = _seen(p, pipeline, entry, wait, memo, airflow_states, airflow_error)
        if seen in wait.allowed:
            state.status, state.seen = SATISFIED, describe_state(seen)
            p.satisfied += 1
            metadata = {
                "wait_status": SATISFIED,
                "awaited": wait.target,
                "awaited_partition": detail,
                "state_seen": seen,
                "allowed_states": wait.states_text,
                "waited_since": _iso(entry.tick),
                "waited": _duration(p.now - entry.tick),
            }
            description = f"Satisfied: {wait.target} {detail} is {seen}"
            p.events.append(
                AssetMaterialization(
                    asset_key=wait.key, partition=entry.partition, description=description, metadata=metadata
                )
            )
            p.events.append(_check_result(wait, entry, True, description, metadata))
        elif p.now >= _deadline(wait, entry):
            state.status, state.seen = FAILED, _seen_text(seen, detail)
            p.failed += 1
            _fail(p, pipeline, entry, wait, state.seen)
        else:
            text = _seen_text(seen, detail)
            if text != state.seen and state.seen is not None:
                p.events.append(_observation(p, wait, entry, WAITING, text))
            state.seen, state.next = text, p.now + wait.poke


def _seen_text(seen: str | None, detail: str) -> str:
    if seen is not None and seen.startswith("cannot check"):
        return seen
    return f"{describe_state(seen)} ({detail})"


def _airflow_states(p: _Pass, due: list) -> tuple[dict[AirflowQuery, str | None], str | None]:
    if not due or p.airflow is None:
        return {}, None
    queries = []
    for entry, wait, _ in due:
        pipeline = p.index.pipelines[entry.pipeline_id]
        queries.append(
            AirflowQuery(wait.dag_id, wait.task_id, logical_date(wait, pipeline.partitions_def, entry.partition))
        )
    try:
        return p.airflow.states(queries), None
    except AirflowError as exc:
        p.log.warning("waits: Airflow at %s could not be asked: %s", p.airflow.settings.url, exc)
        return {}, str(exc)
    except Exception as exc:  # noqa: BLE001 - a bug or an odd answer must not fail the tick for every wait
        p.log.warning("waits: Airflow at %s: %s: %s", p.airflow.settings.url, type(exc).__name__, exc)
        return {}, f"{type(exc).__name__}: {exc}"


def _dagster_states(p: _Pass, due: list) -> dict[tuple, str | None]:
    """The awaited states of the due waits on this Dagster instance, read in batches."""
    wanted: dict[tuple, str | None] = {}
    for entry, wait, _ in due:
        pipeline = p.index.pipelines[entry.pipeline_id]
        try:
            partition, _ = awaited_partition(wait, pipeline.partitions_def, entry.partition)
        except ValueError:
            continue
        ops = wait.awaited_ops if wait.source == THIS and wait.awaited_ops else (None,) * len(wait.awaited)
        for key, op in zip(wait.awaited, ops, strict=True):
            wanted.setdefault((key, partition), op)
    return asset_states(p.instance, wanted) if wanted else {}


def _seen(
    p: _Pass,
    pipeline: WaitingPipeline,
    entry: Entry,
    wait: Wait,
    memo: dict,
    airflow_states: dict,
    airflow_error: str | None,
) -> tuple[str | None, str]:
    """(the awaited state, what was looked at) for the wait in `entry`'s partition."""
    if wait.problem:
        return f"cannot check: {wait.problem}", ""
    if wait.source == AIRFLOW:
        when = logical_date(wait, pipeline.partitions_def, entry.partition)
        detail = f"logical date {when:%Y-%m-%dT%H:%M:%S}Z"
        if airflow_error is not None:
            return f"cannot check: {airflow_error}", detail
        return airflow_states.get(AirflowQuery(wait.dag_id, wait.task_id, when)), detail
    try:
        partition, detail = awaited_partition(wait, pipeline.partitions_def, entry.partition)
    except ValueError as exc:
        return f"cannot check: {exc}", ""
    states = [memo[(key, partition)] for key in wait.awaited]
    state = states[0] if len(states) == 1 else combined_state(states)
    return state, f"partition {detail}" if partition is not None else detail


def _observation(p: _Pass, wait: Wait, entry: Entry, status: str, seen: str | None) -> AssetObservation:
    deadline = _deadline(wait, entry)
    text = {
        WAITING: f"Waiting since {_iso(entry.tick)} for {wait.target} ({wait.states_text})",
        FAILED: f"FAILED: timed out after {_duration(wait.timeout)} waiting for {wait.target} ({wait.states_text})",
    }[status]
    if seen:
        text += f"; seen: {seen}"
    metadata: dict[str, Any] = {
        "wait_status": status,
        "awaited": wait.target,
        "allowed_states": wait.states_text,
        "waiting_since": _iso(entry.tick),
        "times_out_at": _iso(deadline),
        "poke_interval": _duration(wait.poke),
        "source": wait.source,
    }
    if seen:
        metadata["state_seen"] = seen
    if wait.problem:
        metadata["problem"] = wait.problem
    return AssetObservation(asset_key=wait.key, partition=entry.partition, description=text, metadata=metadata)


def _fail(p: _Pass, pipeline: WaitingPipeline, entry: Entry, wait: Wait, seen: str) -> None:
    steps = [s for s in pipeline.order if wait.step in pipeline.after.get(s, ())]
    message = (
        f"timed out after {_duration(wait.timeout)} (since the tick at {_iso(entry.tick)}) waiting for "
        f"{wait.target} to be {' or '.join(sorted(wait.allowed))}; last seen: {seen}"
    )
    if steps:
        message += f". Not run: {', '.join(steps)}"
    p.events.append(_observation(p, wait, entry, FAILED, seen))
    p.events.append(
        _check_result(wait, entry, False, f"FAILED: {message}", {"wait_status": FAILED, "awaited": wait.target})
    )
    p.log.warning("waits: %s partition %s: %s", wait.key.to_user_string(), entry.partition, message)
    try:
        p.alert(wait, entry, message)
    except Exception as exc:  # noqa: BLE001 - an alert never fails the tick
        p.log.warning("waits: the failure alert of %s could not be sent: %s", wait.key.to_user_string(), exc)


def _check_result(wait: Wait, entry: Entry, passed: bool, description: str, metadata: dict) -> AssetCheckEvaluation:
    """The wait's check for the partition: passed when satisfied, failed when it timed out (the
    UI shows it on the wait's asset, per partition)."""
    return AssetCheckEvaluation(
        asset_key=wait.key,
        check_name=WAIT_CHECK_NAME,
        passed=passed,
        partition=entry.partition,
        description=description,
        metadata=metadata,
        severity=AssetCheckSeverity.ERROR,
    )


# --- launches --------------------------------------------------------------------------------


def _launch_ready(p: _Pass) -> None:
    plans = []
    for key, entry in list(p.cursor.open.items()):
        pipeline = p.index.pipelines.get(entry.pipeline_id)
        if pipeline is None:  # the pipeline's waits were removed from its config
            del p.cursor.open[key]
            continue
        plans.append(_Plan.of(pipeline, entry))
    facts = _Facts.read(p, [plan for plan in plans if plan.ready and plan.wanted])
    for plan in plans:
        entry, pipeline = plan.entry, plan.pipeline
        if plan.ready and len(p.run_requests) >= MAX_LAUNCHES_PER_TICK:
            plan.ready = []  # next tick
        _launch(p, plan, facts)
        resolved = all(w.status != WAITING for w in entry.waits.values())
        settled = all(s in entry.launched or s in entry.dropped for s in pipeline.after)
        if resolved and settled:
            del p.cursor.open[entry.key]
            p.cursor.done[entry.key] = p.now


@dataclass
class _Plan:
    """What may run for one open partition: the steps whose waits are all satisfied, what they
    need from outside their run, and the steps that will not run (behind a failed wait)."""

    pipeline: WaitingPipeline
    entry: Entry
    ready: list[str]
    needs: dict[str, set[str]]
    dropped: dict[str, str]

    @property
    def wanted(self) -> set[str]:
        return set().union(*self.needs.values()) if self.needs else set()

    @classmethod
    def of(cls, pipeline: WaitingPipeline, entry: Entry) -> _Plan:
        failed = {s for s, w in entry.waits.items() if w.status == FAILED}
        satisfied = {s for s, w in entry.waits.items() if w.status == SATISFIED}
        dropped: dict[str, str] = {}
        for step, waits in pipeline.after.items():
            if step not in entry.launched and step not in entry.dropped and waits & failed:
                dropped[step] = f"wait {', '.join(sorted(waits & failed))} failed"
        ready = [
            s
            for s in pipeline.order
            if s in pipeline.after and s not in entry.launched and s not in entry.dropped and s not in dropped
            and pipeline.after[s] <= satisfied
        ]  # fmt: skip
        needs = {s: _needs(pipeline, s, set(ready)) for s in ready}
        return cls(pipeline, entry, ready, needs, dropped)


@dataclass
class _Facts:
    """What the launches of one tick need to know of the instance, read in a few queries:
    the pipelines' runs in progress and created since their ticks (by partition), and which
    needed steps materialized."""

    in_progress: set[tuple[str, str]] = field(default_factory=set)
    created: dict[tuple[str, str], float] = field(default_factory=dict)  # latest run creation
    partitioned: dict[tuple, bool] = field(default_factory=dict)  # (key, partition) -> materialized
    unpartitioned: dict[AssetKey, float] = field(default_factory=dict)  # key -> last materialization time

    @classmethod
    def read(cls, p: _Pass, plans: list[_Plan]) -> _Facts:
        facts = cls()
        if not plans:
            return facts
        pids = sorted({plan.pipeline.pipeline_id for plan in plans})
        partition_of = lambda record: record.dagster_run.tags.get(PARTITION_NAME_TAG, "")  # noqa: E731
        for record in p.instance.get_run_records(RunsFilter(tags={PIPELINE_TAG: pids}, statuses=IN_PROGRESS)):
            facts.in_progress.add((record.dagster_run.tags.get(PIPELINE_TAG, ""), partition_of(record)))
        since = datetime.fromtimestamp(min(plan.entry.tick for plan in plans) - 1, timezone.utc)
        for record in p.instance.get_run_records(RunsFilter(tags={PIPELINE_TAG: pids}, created_after=since)):
            where = (record.dagster_run.tags.get(PIPELINE_TAG, ""), partition_of(record))
            facts.created[where] = max(facts.created.get(where, 0.0), record.create_timestamp.timestamp())
        pairs, keys = set(), set()
        for plan in plans:
            for step in plan.wanted:
                if step in plan.pipeline.partitioned:
                    pairs.add((plan.pipeline.key(step), plan.entry.partition))
                else:
                    keys.add(plan.pipeline.key(step))
        ids = latest_attempt_ids(p.instance, pairs) if pairs else {}
        facts.partitioned = {pair: materialized is not None for pair, (materialized, _) in ids.items()}
        for record in p.instance.get_asset_records(sorted(keys, key=lambda k: k.to_string())) if keys else []:
            last = record.asset_entry.last_materialization
            if last is not None:
                facts.unpartitioned[record.asset_entry.asset_key] = last.timestamp
        return facts

    def materialized(self, plan: _Plan, now: float) -> dict[str, bool] | None:
        """Which needed steps materialized for the partition (an unpartitioned one: since the
        tick); None while a run of the pipeline for the partition is in progress, or while the
        tick's run may still appear."""
        pipeline, entry = plan.pipeline, plan.entry
        where = (pipeline.pipeline_id, entry.partition)
        if where in self.in_progress:
            return None
        done = {}
        for step in plan.wanted:
            key = pipeline.key(step)
            if step in pipeline.partitioned:
                done[step] = self.partitioned.get((key, entry.partition), False)
            else:
                done[step] = self.unpartitioned.get(key, 0.0) >= entry.tick
        if all(done.values()):
            return done
        ran = self.created.get(where, 0.0) >= entry.tick - 1
        if not ran and now - entry.tick < BEFORE_GRACE_SECONDS:
            return None  # the tick's run has not been created yet
        return done


def _launch(p: _Pass, plan: _Plan, facts: _Facts) -> None:
    pipeline, entry = plan.pipeline, plan.entry
    newly_dropped = dict(plan.dropped)
    behind_failed = set(newly_dropped)
    ready = plan.ready
    if ready and plan.wanted:
        done = facts.materialized(plan, p.now)
        if done is None:  # the tick's run is not over yet
            ready = []
        else:
            for step in ready:  # in order: a step after a dropped one in the same run is dropped too
                missing = sorted(n for n in plan.needs[step] if not done.get(n))
                behind = [u for u in _upstream_in(pipeline, step, set(ready)) if u in newly_dropped]
                if missing:
                    newly_dropped[step] = f"{', '.join(missing)} did not materialize for {entry.partition}"
                elif behind:
                    newly_dropped[step] = f"{', '.join(behind)} will not run"
            ready = [s for s in ready if s not in newly_dropped]
    if newly_dropped:
        entry.dropped.update(newly_dropped)
        for wait in pipeline.waits.values():  # (a failed wait's own observation already names its steps)
            steps = [s for s in newly_dropped if wait.step in pipeline.after.get(s, ()) and s not in behind_failed]
            if steps:
                text = "; ".join(f"{s}: {newly_dropped[s]}" for s in steps)
                p.events.append(
                    AssetObservation(
                        asset_key=wait.key,
                        partition=entry.partition,
                        description=f"Steps after this wait not run for {entry.partition}: {text}",
                        metadata={"wait_status": entry.waits[wait.step].status, "not_run": text},
                    )
                )
    if ready:
        waits = sorted(set().union(*(pipeline.after[s] for s in ready)))
        p.run_requests.append(
            RunRequest(
                run_key=f"{pipeline.pipeline_id}:{entry.partition}:after_waits:{','.join(ready)}",
                asset_selection=[pipeline.key(s) for s in ready],
                partition_key=entry.partition,
                tags={**pipeline.tags, LAUNCHED_BY_TAG: ",".join(waits)},
            )
        )
        entry.launched.extend(ready)


def _upstream_in(pipeline: WaitingPipeline, step: str, among: set[str]) -> list[str]:
    """The steps of `among` that `step` depends on, directly or through waits."""
    found, todo, seen = [], list(pipeline.upstream.get(step, ())), set()
    while todo:
        up = todo.pop()
        if up in seen:
            continue
        seen.add(up)
        if up in among:
            found.append(up)
        elif up in pipeline.waits:
            todo.extend(pipeline.upstream.get(up, ()))
    return found


def _needs(pipeline: WaitingPipeline, step: str, ready: set[str]) -> set[str]:
    """The runnable steps `step` needs that are not in its own run: found walking up through
    waits; steps in the same run are left to Dagster."""
    found, todo, seen = set(), list(pipeline.upstream.get(step, ())), set()
    while todo:
        up = todo.pop()
        if up in seen:
            continue
        seen.add(up)
        if up in pipeline.waits:
            todo.extend(pipeline.upstream.get(up, ()))
        elif up not in ready:
            found.add(up)
    return found


def _summary(p: _Pass) -> str:
    waiting = [
        (entry, step, state)
        for entry in p.cursor.open.values()
        for step, state in entry.waits.items()
        if state.status == WAITING
    ]
    parts = [f"{len(waiting)} wait(s) open"]
    this_tick = []
    for n, what in (
        (p.opened, "partition(s) opened"),
        (p.checked, "checked"),
        (p.satisfied, "satisfied"),
        (p.failed, "failed (timed out)"),
        (len(p.run_requests), "run(s) launched"),
        (p.deferred, "checks deferred to the next tick"),
    ):
        if n:
            this_tick.append(f"{n} {what}")
    if this_tick:
        parts.append("this tick: " + ", ".join(this_tick))
    waiting.sort(key=lambda w: w[0].tick)
    listed = []
    for entry, step, state in waiting[:SUMMARY_LISTED]:
        pipeline = p.index.pipelines.get(entry.pipeline_id)
        wait = pipeline.waits.get(step) if pipeline else None
        target = wait.target if wait else "?"
        listed.append(
            f"{entry.pipeline_id}.{step} [{entry.partition}] since {_iso(entry.tick)} for {target}"
            + (f" (seen: {state.seen})" if state.seen else "")
        )
    text = "; ".join(parts)
    if listed:
        text += ". Open: " + " | ".join(listed)
        if len(waiting) > SUMMARY_LISTED:
            text += f" | and {len(waiting) - SUMMARY_LISTED} more"
    return text


# --- the sensor ------------------------------------------------------------------------------


def running_schedules(context: SensorEvaluationContext) -> set[str] | None:
    """The names of this code location's schedules that are running; None when the context
    has no code location (a test context): then every schedule counts as running."""
    from dagster._core.definitions.selector import RepositorySelector
    from dagster._core.scheduler.instigation import InstigatorStatus, InstigatorType
    from dagster._serdes import create_snapshot_id

    origin = context.code_location_origin
    repository = context.repository_name
    if origin is None or repository is None:
        return None
    selector_id = create_snapshot_id(RepositorySelector(location_name=origin.location_name, repository_name=repository))
    stored = {
        state.instigator_name: state.status
        for state in context.instance.all_instigator_state(
            repository_selector_id=selector_id, instigator_type=InstigatorType.SCHEDULE
        )
    }
    running = {name for name, status in stored.items() if status == InstigatorStatus.RUNNING}
    repository_def = context.repository_def
    if repository_def is not None:  # a schedule running by default, never switched
        for schedule in repository_def.schedule_defs:
            if schedule.name not in stored and schedule.default_status == DefaultScheduleStatus.RUNNING:
                running.add(schedule.name)
    return running


def _alert_sender(alert_index: AlertIndex | None, notifier: Notifier | None, log_: logging.Logger, url: Callable):
    from ml_pipelines.alerts.messages import Alert, AlertKind, StepError

    def send(wait: Wait, entry: Entry, message: str) -> None:
        if alert_index is None or notifier is None or wait.pipeline_id not in alert_index.pipelines:
            return
        alert = Alert(
            kind=AlertKind.FAILURE,
            env=alert_index.env,
            pipeline_id=wait.pipeline_id,
            run_id="",
            run_url=url(wait, entry.partition),
            partition=entry.partition,
            steps=(wait.step,),
            errors=(StepError(wait.step, message),),
        )
        route = alert_index.pipelines[wait.pipeline_id].route(AlertKind.FAILURE)
        deliveries = notifier.notify(alert, route, log_)
        where = ", ".join(f"{d.channel} {d.target}: {'sent' if d.delivered else 'NOT DELIVERED'}" for d in deliveries)
        log_.info("%s | %s", alert.headline, where or "nothing to send: no Slack channel and no e-mail")

    return send


def wait_sensor(
    index: WaitIndex,
    alert_index: AlertIndex | None,
    airflow: AirflowWaits | None,
    interval_seconds: int,
    ui_url: str,
) -> SensorDefinition:
    @sensor(
        name=WAIT_SENSOR_NAME,
        job_name=IMPLICIT_ASSET_JOB,
        minimum_interval_seconds=interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        required_resource_keys={"notifier"},
        description=(
            "External waits (type: ExternalTaskSensor) of every pipeline: at a pipeline's tick (its schedule "
            "running) opens its waits for the tick's partition, checks each every poke_interval, launches the "
            "steps after a wait once it is satisfied, and fails it after timeout (alert, failed event on the "
            "wait's asset). Its ticks list the open waits."
        ),
    )
    def ml_pipelines_waits(context: SensorEvaluationContext):
        send = _alert_sender(
            alert_index,
            context.resources.notifier,
            context.log,
            lambda wait, partition: _asset_url(ui_url, wait, partition),
        )
        result = evaluate_waits(
            context.instance,
            context.cursor,
            index,
            running_schedules=running_schedules(context),
            airflow=airflow,
            alert=send,
            log_=context.log,
            ui_url=ui_url,
        )
        if result.run_requests:
            context.log.info(result.summary)
            return SensorResult(
                run_requests=result.run_requests, asset_events=result.asset_events, cursor=result.cursor
            )
        return SensorResult(
            skip_reason=SkipReason(result.summary), asset_events=result.asset_events, cursor=result.cursor
        )

    return ml_pipelines_waits


def _asset_url(ui_url: str, wait: Wait, partition: str) -> str:
    path = "/".join(quote(p, safe="") for p in wait.key.path)
    return f"{ui_url.rstrip('/')}/assets/{path}?view=events&partition={quote(partition, safe='')}"


def sensor_interval(index: WaitIndex, environ: Any = None) -> int:
    """ML_PIPELINES_WAIT_INTERVAL_SECONDS, else the shortest poke_interval, between 5 and 30 s."""
    import os

    environ = os.environ if environ is None else environ
    text = environ.get("ML_PIPELINES_WAIT_INTERVAL_SECONDS", "").strip()
    if text:
        if not (text.isdigit() and int(text) >= 1):
            raise ValueError(f"ML_PIPELINES_WAIT_INTERVAL_SECONDS={text!r} must be a whole number of at least 1")
        return int(text)
    pokes = [w.poke for p in index.pipelines.values() for w in p.waits.values()]
    if not pokes:
        return DEFAULT_INTERVAL_SECONDS
    return int(max(MIN_INTERVAL_SECONDS, min(DEFAULT_INTERVAL_SECONDS, min(pokes))))


def wait_definitions(
    project: Project, settings: Settings, built: Definitions | None = None, environ: Any = None
) -> Definitions:
    """The waits sensor of `project` and its checks (merged into the code location by
    `location.py`; nothing when no pipeline with a schedule has a wait). `built`: the factory's
    definitions; a pipeline that failed to build there (a broken-config asset instead) is left
    out. Warns, in the load's log, of waits that can never be satisfied as written."""
    from ml_pipelines.alerts.notifier import alert_settings_from_env
    from ml_pipelines.alerts.sensors import AlertIndex

    airflow_settings = airflow_settings_from_env(environ)
    warnings = wait_warnings(project, airflow_settings is not None)
    for warning in warnings[:MAX_LOAD_WARNINGS]:
        log.warning("%s", warning)
    if len(warnings) > MAX_LOAD_WARNINGS:
        log.warning(
            "and %d more external waits that can never be satisfied as written: run `ml-pipelines validate`",
            len(warnings) - MAX_LOAD_WARNINGS,
        )
    index = WaitIndex.from_project(project, settings.env, airflow_settings is not None)
    if built is not None:  # one config never breaks the location: only the pipelines that built
        present = {a.key for a in built.assets or () if isinstance(a, AssetSpec)}
        index.pipelines = {
            pid: w for pid, w in index.pipelines.items() if all(wait.key in present for wait in w.waits.values())
        }
    if not index.pipelines:
        return Definitions()
    alert_settings = alert_settings_from_env(environ)
    alert_index = AlertIndex.from_project(project, settings.env, alert_settings.ui_url)
    airflow = AirflowWaits(airflow_settings) if airflow_settings is not None else None
    sensor_def = wait_sensor(index, alert_index, airflow, sensor_interval(index, environ), alert_settings.ui_url)
    return Definitions(sensors=[sensor_def], asset_checks=wait_checks(index))


def wait_checks(index: WaitIndex) -> list:
    """A check `wait_satisfied` on each wait's asset, partitioned as the asset: the sensor records
    it (passed when satisfied, failed at timeout), which is how the UI shows a wait failed for a
    partition (Dagster OSS stores no failed-materialization event for an external asset). One
    op per distinct partitions definition; executing it by hand only says so."""
    import warnings

    from dagster import AssetCheckSpec, Failure, multi_asset_check

    groups: dict[Any, list[tuple[WaitingPipeline, Wait]]] = {}
    for pipeline in index.pipelines.values():
        for wait in pipeline.waits.values():
            groups.setdefault(pipeline.partitions_def, []).append((pipeline, wait))
    checks = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # partitioned asset checks are a preview feature in Dagster 1.13
        for n, (partitions_def, waits) in enumerate(groups.items()):
            try:
                specs = [
                    AssetCheckSpec(
                        WAIT_CHECK_NAME,
                        asset=wait.key,
                        partitions_def=partitions_def,
                        description=f"Passed: the wait was satisfied for the partition; failed: it timed out. "
                        f"Recorded by the {WAIT_SENSOR_NAME} sensor.",
                    )
                    for _, wait in waits
                ]

                def not_executable(context):
                    raise Failure(
                        description=f"{WAIT_CHECK_NAME} is recorded by the {WAIT_SENSOR_NAME} sensor; it does not run",
                        allow_retries=False,
                    )

                checks.append(
                    multi_asset_check(specs=specs, can_subset=True, name=f"ml_pipelines_wait_checks_{n}")(
                        not_executable
                    )
                )
            except Exception:  # noqa: BLE001 - the waits still work without their checks; never break the location
                log.error(
                    "waits: the wait_satisfied checks of %d wait(s) could not be defined", len(waits), exc_info=True
                )
    return checks
