"""One sensor for the whole code location sends every pipeline's alerts: run success, step
retry (each failed attempt) and run failure, to Slack, e-mail or the log (`notifier`).

Why one custom sensor and not Dagster's run-status sensors: a run-status sensor sees runs,
not step attempts (a retry is a STEP_UP_FOR_RETRY event inside a run), and a retry that
happens just before a run finishes must be sent before the run's failure, exactly once.
The sensor reads, per tick:

1. the runs in progress (`get_run_records`, statuses STARTED/CANCELING);
2. the run-status events since its cursor (`fetch_run_status_changes` for RUN_SUCCESS,
   RUN_FAILURE, RUN_CANCELED: the global index that run-status sensors read, on SQLite too);
   for each finished run of ours: its step events (`get_records_for_run`), the retries not
   alerted yet, then the success or failure alert;
3. for each run still in progress: its retries not alerted yet.

The runs in progress are read before the finished ones, so a run that finishes between the
two reads is among the finished: no retry is missed. The cursor keeps, per run-status event
type, the storage id of the last event handled, and per run in progress the storage id of
its last retry alerted; each event alerts once. (An event-log cursor over STEP_UP_FOR_RETRY
across runs would be one query, but the SQLite event log, LOCAL's, cannot answer it.) The
work per tick grows with the runs that finished or are in progress, not with the number of
pipelines.

The cursor is saved when the tick ends: if a tick fails after sending, the next one sends
those alerts again (at least once). A tick stops sending after `TICK_BUDGET_SECONDS` and
goes on from there at the next tick.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    Definitions,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from dagster._core.event_api import RunStatusChangeRecordsFilter
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

from ml_pipelines.alerts.messages import Alert, AlertKind, StepError, first_lines
from ml_pipelines.alerts.notifier import (
    DEFAULT_INTERVAL_SECONDS,
    Delivery,
    Notifier,
    Route,
    alert_settings_from_env,
)
from ml_pipelines.factory.assets import PIPELINE_TAG, step_key
from ml_pipelines.steps.registry import spec_of

if TYPE_CHECKING:
    from dagster import DagsterRun
    from dagster._utils.error import SerializableErrorInfo

    from ml_pipelines.config.loader import Project
    from ml_pipelines.environment import Settings

ALERT_SENSOR_NAME = "ml_pipelines_alerts"
STATUS_FETCH_LIMIT = 200  # run-status events of each type read per tick; the rest next tick
TICK_BUDGET_SECONDS = 30.0  # a tick sends no more alerts after this long (Dagster stops a tick at 60 s)
MAX_TRACKED_RUNS = 1_000  # runs in progress remembered in the cursor

FINISHED: dict[DagsterEventType, AlertKind | None] = {
    DagsterEventType.RUN_SUCCESS: AlertKind.SUCCESS,
    DagsterEventType.RUN_FAILURE: AlertKind.FAILURE,
    DagsterEventType.RUN_CANCELED: None,  # no alert of its own; its retries are still sent
}
IN_PROGRESS = [DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
STEP_EVENTS = {DagsterEventType.STEP_UP_FOR_RETRY, DagsterEventType.STEP_FAILURE, DagsterEventType.STEP_SUCCESS}
# Dagster's wrappers around the error a step raised: the message is in their cause.
_WRAPPERS = {"RetryRequestedFromPolicy", "DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError"}


@dataclass(frozen=True)
class PipelineAlerts:
    """A pipeline's alert settings in one environment."""

    pipeline_id: str
    slack_channel: str | None
    emails: tuple[str, ...]
    email_on_failure: bool
    email_on_retry: bool
    max_attempts: int  # 1 + retries
    steps: tuple[str, ...]  # runnable steps, in config order

    def route(self, kind: AlertKind) -> Route:
        wants_email = (kind is AlertKind.FAILURE and self.email_on_failure) or (
            kind is AlertKind.RETRY and self.email_on_retry
        )
        return Route(self.slack_channel or None, self.emails if wants_email else ())


@dataclass(frozen=True)
class AlertIndex:
    """What the sensor needs of the loaded configs: each pipeline's alert settings, and which
    pipeline and step each op runs."""

    env: str
    ui_url: str
    pipelines: dict[str, PipelineAlerts]
    ops: dict[str, tuple[str, str]]  # op name (a step event's step_key) -> (pipeline id, step name)

    @classmethod
    def from_project(cls, project: Project, env: str, ui_url: str) -> AlertIndex:
        pipelines: dict[str, PipelineAlerts] = {}
        ops: dict[str, tuple[str, str]] = {}
        prod = env == "PROD"
        for loaded in project.pipelines:
            config = loaded.config
            pid = config.pipeline_id
            args = config.default_args
            channels = config.slack_channel
            channel = None if channels is None else channels.PROD if prod else channels.NON_PROD
            steps = tuple(t.name for t in config.tasks if spec_of(t).runnable)
            pipelines[pid] = PipelineAlerts(
                pipeline_id=pid,
                slack_channel=channel or None,
                emails=tuple(args.email_prod if prod else args.email_nonprod),
                email_on_failure=args.email_on_failure,
                email_on_retry=args.email_on_retry,
                max_attempts=1 + (args.retries or 0),
                steps=steps,
            )
            for name in steps:
                ops[step_key(pid, name).to_python_identifier()] = (pid, name)
        return cls(env=env, ui_url=ui_url.rstrip("/"), pipelines=pipelines, ops=ops)

    def run_url(self, run_id: str) -> str:
        return f"{self.ui_url}/runs/{run_id}"

    def pipelines_of(self, run: DagsterRun, step_keys: list[str] = ()) -> list[str]:
        """The pipelines of this code location a run works on: from its asset selection,
        its pipeline tag and the steps it ran. Empty: not one of ours."""
        found = {key.path[0] for key in run.asset_selection or () if key.path and key.path[0] in self.pipelines}
        tagged = run.tags.get(PIPELINE_TAG)
        if not found and tagged in self.pipelines:
            found.add(tagged)
        found |= {self.ops[k][0] for k in step_keys if k in self.ops}
        return sorted(found)


@dataclass
class AlertCursor:
    after: dict[str, int]  # run-status event type -> storage id of the last one handled
    runs: dict[str, int] = field(default_factory=dict)  # run id -> storage id of its last retry alerted

    def to_json(self) -> str:
        return json.dumps({"after": self.after, "runs": self.runs}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> AlertCursor | None:
        """None for no cursor, or one this sensor did not write (then it starts afresh)."""
        if not text:
            return None
        try:
            data = json.loads(text)
            after = {str(k): int(v) for k, v in data["after"].items()}
            runs = {str(k): int(v) for k, v in data.get("runs", {}).items()}
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        if set(after) != {t.value for t in FINISHED}:
            return None
        return cls(after, runs)


def _partition(run: DagsterRun) -> str | None:
    tags = run.tags
    if PARTITION_NAME_TAG in tags:
        return tags[PARTITION_NAME_TAG]
    start, end = tags.get(ASSET_PARTITION_RANGE_START_TAG), tags.get(ASSET_PARTITION_RANGE_END_TAG)
    if start and end:
        return start if start == end else f"{start}...{end}"
    return None


def error_text(error: SerializableErrorInfo | None, fallback: str = "") -> str:
    """The first lines of what went wrong, without Dagster's wrappers and module paths."""
    while error is not None and error.cls_name in _WRAPPERS and (error.cause or error.context):
        error = error.cause or error.context
    if error is None:
        return first_lines(fallback)
    text = error.message.strip()
    head, sep, rest = text.partition(": ")
    if sep and head.rsplit(".", 1)[-1] == error.cls_name:
        # a Failure's description says what it means; other errors keep their class name
        text = rest if error.cls_name == "Failure" else f"{error.cls_name}: {rest}"
    elif text.rsplit(".", 1)[-1] == error.cls_name:  # an exception without a message
        text = error.cls_name
    return first_lines(text or fallback)


def _ours(run: DagsterRun | None, location: str | None) -> bool:
    """Not a run of another code location (a run launched outside any, e.g. in a test or
    by `dagster asset materialize`, is judged by its pipelines alone)."""
    if run is None:
        return False
    origin = run.remote_job_origin
    run_location = origin.repository_origin.code_location_origin.location_name if origin else None
    return location is None or run_location is None or run_location == location


def _delivery_text(delivery: Delivery) -> str:
    if delivery.channel == "log":
        return f"printed in this log instead of {delivery.target}"
    return f"{delivery.channel} {delivery.target}: {'sent' if delivery.delivered else 'NOT DELIVERED'}"


class _Outbox:
    """Sends alerts through the notifier, logs each, and counts them for the tick's summary."""

    def __init__(self, index: AlertIndex, notifier: Notifier, log: logging.Logger, deadline: float, clock):
        self.index, self.notifier, self.log = index, notifier, log
        self.deadline, self.clock = deadline, clock
        self.sent = self.undelivered = self.unrouted = 0

    @property
    def out_of_time(self) -> bool:
        return self.clock() > self.deadline

    def send(self, alert: Alert) -> None:
        route = self.index.pipelines[alert.pipeline_id].route(alert.kind)
        deliveries = self.notifier.notify(alert, route, self.log)
        if not deliveries:
            self.unrouted += 1
            self.log.info(
                "%s | run %s | nothing to send: no Slack channel and no e-mail for %s alerts in %s",
                alert.headline,
                alert.run_url,
                alert.kind.value,
                self.index.env,
            )
            return
        self.sent += 1
        self.undelivered += sum(1 for d in deliveries if not d.delivered)
        where = ", ".join(_delivery_text(d) for d in deliveries)
        self.log.info("%s | run %s | %s", alert.headline, alert.run_url, where)

    def summary(self) -> str:
        if not (self.sent or self.unrouted):
            return f"no new alerts (notifier: {self.notifier.summary})"
        text = f"{self.sent + self.unrouted} alert(s): {self.sent} sent"
        if self.undelivered:
            text += f", {self.undelivered} delivery(ies) failed (warnings in this tick's log)"
        if self.unrouted:
            text += f", {self.unrouted} with no recipient in {self.index.env}"
        return text + f" (notifier: {self.notifier.summary})"


def _step_records(instance: DagsterInstance, run_id: str) -> list:
    return list(instance.get_records_for_run(run_id, of_type=STEP_EVENTS).records)


def _retry_alerts(index: AlertIndex, run: DagsterRun, records: list, after: int) -> tuple[list[Alert], int]:
    """The run's retry alerts with storage ids above `after`, and the highest id seen."""
    alerts = []
    attempts: dict[str, int] = {}
    last = after
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None or event.event_type != DagsterEventType.STEP_UP_FOR_RETRY:
            continue
        attempts[event.step_key] = attempts.get(event.step_key, 0) + 1
        if record.storage_id <= after or event.step_key not in index.ops:
            last = max(last, record.storage_id)
            continue
        pid, step = index.ops[event.step_key]
        data = event.event_specific_data
        alerts.append(
            Alert(
                kind=AlertKind.RETRY,
                env=index.env,
                pipeline_id=pid,
                run_id=run.run_id,
                run_url=index.run_url(run.run_id),
                partition=_partition(run),
                steps=(step,),
                errors=(StepError(step, error_text(getattr(data, "error", None), record.event_log_entry.message)),),
                attempt=attempts[event.step_key],
                max_attempts=index.pipelines[pid].max_attempts,
                retry_in_seconds=getattr(data, "seconds_to_wait", None),
            )
        )
        last = max(last, record.storage_id)
    return alerts, last


def _finished_alerts(index: AlertIndex, run: DagsterRun, kind: AlertKind, records: list, status_record) -> list[Alert]:
    """One alert per pipeline of the run: its succeeded steps, or its failed steps and their
    errors (a failure before any step failed names the run's own error)."""
    succeeded: dict[str, list[str]] = {}
    failed: dict[str, dict[str, str]] = {}
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None or event.step_key not in index.ops:
            continue
        pid, step = index.ops[event.step_key]
        if event.event_type == DagsterEventType.STEP_SUCCESS:
            succeeded.setdefault(pid, []).append(step)
        elif event.event_type == DagsterEventType.STEP_FAILURE:
            data = event.event_specific_data
            failed.setdefault(pid, {})[step] = error_text(getattr(data, "error", None), record.event_log_entry.message)
    pipelines = index.pipelines_of(run, [r.event_log_entry.step_key for r in records if r.event_log_entry.step_key])
    base = {"env": index.env, "run_id": run.run_id, "run_url": index.run_url(run.run_id), "partition": _partition(run)}
    alerts = []
    for pid in pipelines:
        order = index.pipelines[pid].steps
        if kind is AlertKind.SUCCESS:
            steps = sorted(set(succeeded.get(pid, ())), key=lambda s: order.index(s) if s in order else len(order))
            alerts.append(Alert(kind=kind, pipeline_id=pid, steps=tuple(steps), **base))
        elif failed.get(pid):
            steps = tuple(s for s in order if s in failed[pid])
            errors = tuple(StepError(s, failed[pid][s]) for s in steps)
            alerts.append(Alert(kind=kind, pipeline_id=pid, steps=steps, errors=errors, **base))
        elif not failed:  # the run failed before or outside its steps
            event = status_record.event_log_entry.dagster_event
            data = event.event_specific_data if event is not None else None
            message = error_text(getattr(data, "error", None), status_record.event_log_entry.message)
            alerts.append(Alert(kind=kind, pipeline_id=pid, errors=(StepError("(run)", message),), **base))
    return alerts


def _latest_storage_id(instance: DagsterInstance, event_type: DagsterEventType) -> int:
    records = instance.fetch_run_status_changes(RunStatusChangeRecordsFilter(event_type=event_type), limit=1).records
    return records[0].storage_id if records else 0


def _runs_in_progress(instance: DagsterInstance, index: AlertIndex, location: str | None) -> list[DagsterRun]:
    records = instance.get_run_records(RunsFilter(statuses=IN_PROGRESS))
    return [r.dagster_run for r in records if _ours(r.dagster_run, location) and index.pipelines_of(r.dagster_run)]


def initial_cursor(instance: DagsterInstance, index: AlertIndex, location: str | None) -> AlertCursor:
    """Alerts start from now: runs that finished before are not alerted, nor the retries
    already made by runs in progress."""
    cursor = AlertCursor({t.value: _latest_storage_id(instance, t) for t in FINISHED})
    for run in _runs_in_progress(instance, index, location):
        _, last = _retry_alerts(index, run, _step_records(instance, run.run_id), 0)
        if last:
            cursor.runs[run.run_id] = last
    return cursor


def evaluate_alerts(
    instance: DagsterInstance,
    cursor_text: str | None,
    index: AlertIndex,
    notifier: Notifier,
    log: logging.Logger,
    location: str | None = None,
    budget_seconds: float = TICK_BUDGET_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[str, str]:
    """One tick: send the alerts of what happened since `cursor_text`; return the new cursor
    and a one-line summary. `location`: the sensor's code location name (runs of others are
    left alone)."""
    cursor = AlertCursor.from_json(cursor_text)
    if cursor is None:
        cursor = initial_cursor(instance, index, location)
        return cursor.to_json(), "started: alerts for what happens from now on"
    out = _Outbox(index, notifier, log, clock() + budget_seconds, clock)
    # 1. runs in progress, read before the finished ones (see the module's docstring)
    in_progress = _runs_in_progress(instance, index, location)
    # 2. finished runs, in the order they finished
    events = []
    for event_type in FINISHED:
        records = instance.fetch_run_status_changes(
            RunStatusChangeRecordsFilter(event_type=event_type, after_storage_id=cursor.after[event_type.value]),
            limit=STATUS_FETCH_LIMIT,
            ascending=True,
        ).records
        events += [(record.storage_id, event_type, record) for record in records]
    events.sort(key=lambda e: e[0])
    run_ids = list({record.event_log_entry.run_id for _, _, record in events})
    runs = _runs_by_id(instance, run_ids)
    finished: set[str] = set()
    for storage_id, event_type, record in events:
        if out.out_of_time:
            break
        run_id = record.event_log_entry.run_id
        run = runs.get(run_id)
        if _ours(run, location):
            records = _step_records(instance, run_id)
            step_keys = [r.event_log_entry.step_key for r in records if r.event_log_entry.step_key]
            if index.pipelines_of(run, step_keys):
                retries, _ = _retry_alerts(index, run, records, cursor.runs.get(run_id, 0))
                for alert in retries:
                    out.send(alert)
                kind = FINISHED[event_type]
                if kind is not None:
                    for alert in _finished_alerts(index, run, kind, records, record):
                        out.send(alert)
        cursor.runs.pop(run_id, None)
        cursor.after[event_type.value] = storage_id
        finished.add(run_id)
    # 3. retries of the runs still in progress
    for run in in_progress:
        if run.run_id in finished or out.out_of_time:
            continue
        retries, last = _retry_alerts(index, run, _step_records(instance, run.run_id), cursor.runs.get(run.run_id, 0))
        for alert in retries:
            out.send(alert)
        if last:
            cursor.runs[run.run_id] = last
    _forget_gone_runs(instance, cursor, {r.run_id for r in in_progress} | finished)
    return cursor.to_json(), out.summary()


def _runs_by_id(instance: DagsterInstance, run_ids: list[str]) -> dict[str, DagsterRun]:
    if not run_ids:  # Dagster refuses an empty id list
        return {}
    return {r.dagster_run.run_id: r.dagster_run for r in instance.get_run_records(RunsFilter(run_ids=run_ids))}


def _forget_gone_runs(instance: DagsterInstance, cursor: AlertCursor, seen: set[str]) -> None:
    """Drop the cursor's runs that were deleted; a finished run stays until its run-status
    event is handled (which pops it). At most MAX_TRACKED_RUNS are kept."""
    unseen = [run_id for run_id in cursor.runs if run_id not in seen]
    if unseen:
        existing = _runs_by_id(instance, unseen)
        for run_id in unseen:
            if run_id not in existing:
                del cursor.runs[run_id]
    if len(cursor.runs) > MAX_TRACKED_RUNS:
        keep = sorted(cursor.runs.items(), key=lambda item: item[1])[-MAX_TRACKED_RUNS:]
        cursor.runs = dict(keep)


def alert_sensor(index: AlertIndex, interval_seconds: int = DEFAULT_INTERVAL_SECONDS) -> SensorDefinition:
    @sensor(
        name=ALERT_SENSOR_NAME,
        minimum_interval_seconds=interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        required_resource_keys={"notifier"},
        description=(
            "Alerts of every pipeline: run success, step retry (each failed attempt) and run failure, "
            "to the pipeline's slack_channel and email_prod/email_nonprod (email_on_failure, email_on_retry); "
            "printed to this sensor's log where Slack or SMTP is not configured. Launches nothing."
        ),
    )
    def ml_pipelines_alerts(context: SensorEvaluationContext) -> SensorResult:
        origin = context.code_location_origin
        cursor, summary = evaluate_alerts(
            context.instance,
            context.cursor,
            index,
            context.resources.notifier,
            context.log,
            origin.location_name if origin is not None else None,
        )
        return SensorResult(skip_reason=SkipReason(summary), cursor=cursor)

    return ml_pipelines_alerts


def alert_definitions(project: Project, settings: Settings, environ: Any = None) -> Definitions:
    """The alert sensor of `project` in `settings.env` (merged into the code location by
    `location.py`; the `notifier` resource comes from `environment.build_resources`)."""
    alert_settings = alert_settings_from_env(environ)
    index = AlertIndex.from_project(project, settings.env, alert_settings.ui_url)
    return Definitions(sensors=[alert_sensor(index, alert_settings.interval_seconds)])
