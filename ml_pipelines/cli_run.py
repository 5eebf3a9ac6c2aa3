"""`ml-pipelines run PIPELINE_ID --date D [--step S ...]`: one run of a pipeline on the
project's own Dagster instance (the DAGSTER_HOME of `make dev`, so the run is in the UI).

The run is the pipeline's job (its selected steps with --step) for the partition of the
date, created as the UI creates one and started as the UI's are:
- when a `dagster-daemon` is running on the instance (`make dev`), it is queued and the
  daemon starts it: max_active_runs (the pipeline's pool) holds as for any queued run;
- otherwise this command starts it itself, once fewer runs of the pipeline than its
  max_active_runs are in progress.
Either way the run worker and the step processes are those of a run launched from the UI.
The command then prints each step as it starts, retries, fails or succeeds, and exits 0
when the run succeeded, 1 when it failed or was canceled. Ctrl-C cancels the run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from contextlib import contextmanager, suppress
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from dagster import DagsterInstance

    from ml_pipelines.config.loader import LoadedPipeline, Project
    from ml_pipelines.environment import Settings

LOCATION_NAME = "ml_pipelines"  # workspace.yaml's and [tool.dg.project]'s: the daemon of `make dev` finds it
DEFINITIONS_MODULE = "ml_pipelines.definitions"
POLL_SECONDS = 0.5
POOL_WAIT_LOG_SECONDS = 60.0


class RunCommandError(Exception):
    """A mistake in the command line or the project for this run: one line, exit 1."""


def partition_key_for(pipeline: LoadedPipeline, text: str | None) -> str | None:
    """The partition of `--date`: the date itself for daily and coarser schedules (the key is
    the logical date, Airflow's `ds`), or a full key (`2024-01-05-06:00`) for finer ones. None
    for an unscheduled pipeline (it has no partitions)."""
    from ml_pipelines.factory.partitions import pipeline_partitions

    pid = pipeline.pipeline_id
    partitions_def = pipeline_partitions(pipeline.config)
    if partitions_def is None:
        if text:
            raise RunCommandError(f"{pid} has no schedule_interval, so no dates: leave out --date")
        return None
    if not text:
        raise RunCommandError(f"{pid} runs per date: give --date YYYY-MM-DD")
    key = text  # a partition key as written, unless it is an ISO date in another format
    with suppress(ValueError):
        key = date.fromisoformat(text).strftime(partitions_def.fmt)
    try:
        window = partitions_def.time_window_for_partition_key(key)
    except Exception:  # noqa: BLE001 - Dagster raises several kinds for a malformed key
        window = None
    now = datetime.now(timezone.utc)
    if window is None or window.start < partitions_def.start or window.end > now:
        example = partitions_def.start.strftime(partitions_def.fmt)
        raise RunCommandError(
            f"{pid} has no partition {text!r}: its partitions are {partitions_def.fmt} keys from {example} "
            f"(schedule {pipeline.config.schedule_interval}) up to the last whole window before now"
        )
    return key


def selected_steps(pipeline: LoadedPipeline, names: Sequence[str]) -> list[str]:
    """The runnable steps named by --step (all of them when none is named)."""
    from ml_pipelines.steps.registry import spec_of

    runnable = [t.name for t in pipeline.config.tasks if spec_of(t).runnable]
    if not names:
        return runnable
    unknown = [n for n in names if n not in runnable]
    if unknown:
        raise RunCommandError(
            f"{pipeline.pipeline_id} has no runnable step {', '.join(map(repr, unknown))}; "
            f"its steps: {', '.join(runnable)}"
        )
    return [n for n in runnable if n in names]


def _daemon_running(instance: DagsterInstance) -> bool:
    from dagster._daemon.controller import get_daemon_statuses

    try:
        status = get_daemon_statuses(instance, ["QUEUED_RUN_COORDINATOR"], ignore_errors=True)
    except Exception:  # noqa: BLE001 - no heartbeat table yet, or an unreadable one: no daemon
        return False
    return bool(status.get("QUEUED_RUN_COORDINATOR") and status["QUEUED_RUN_COORDINATOR"].healthy)


@contextmanager
def _output_of_children_to(path: Path):
    """Processes started meanwhile (the code server, and the run worker it starts later) write
    their console logs to `path` rather than the terminal: the UI has them, and this command
    prints the run's progress itself."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = os.dup(1), os.dup(2)
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(log, 1)
        os.dup2(log, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, log):
            os.close(fd)


@contextmanager
def _workspace(instance: DagsterInstance, log: Path):
    """The code location as `make dev` serves it, in a code server of its own."""
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import ModuleTarget

    target = ModuleTarget(
        module_name=DEFINITIONS_MODULE, attribute=None, working_directory=os.getcwd(), location_name=LOCATION_NAME
    )
    with _output_of_children_to(log):
        process_context = WorkspaceProcessContext(instance, target)
    with process_context:
        yield process_context


def _create_run(context: Any, instance: DagsterInstance, pipeline_id: str, keys: list, tags: dict[str, str]):
    """A run of the pipeline's job for `keys`, created as the UI's launchRun creates one."""
    from dagster._core.definitions.selector import JobSubsetSelector
    from dagster._utils.merger import merge_dicts

    if not context.has_code_location(LOCATION_NAME):
        error = context.get_code_location_error(LOCATION_NAME)
        detail = error.to_string() if error is not None else "not loaded"
        raise RunCommandError(f"the code location did not load:\n{detail}")
    location = context.get_code_location(LOCATION_NAME)
    (repo,) = location.get_repositories().values()
    # the pipeline's job; Dagster's implicit asset job where jobs are off (ML_PIPELINES_PIPELINE_JOBS=0)
    job_name = pipeline_id if repo.has_job(pipeline_id) else "__ASSET_JOB"
    selector = JobSubsetSelector(
        location_name=location.name,
        repository_name=repo.name,
        job_name=job_name,
        op_selection=None,
        asset_selection=keys,
    )
    remote_job = location.get_job(selector)
    plan = location.get_execution_plan(
        remote_job, run_config={}, step_keys_to_execute=None, known_state=None, instance=instance
    )
    return instance.create_run(
        job_name=job_name,
        run_id=None,
        run_config={},
        resolved_op_selection=None,
        step_keys_to_execute=plan.execution_plan_snapshot.step_keys_to_execute,
        op_selection=None,
        status=None,
        root_run_id=None,
        parent_run_id=None,
        tags=merge_dicts(remote_job.tags, tags),
        job_snapshot=remote_job.job_snapshot,
        execution_plan_snapshot=plan.execution_plan_snapshot,
        parent_job_snapshot=remote_job.parent_job_snapshot,
        remote_job_origin=remote_job.get_remote_origin(),
        job_code_origin=remote_job.get_python_origin(),
        asset_selection=frozenset(keys),
        asset_check_selection=None,
        asset_graph=repo.asset_graph,
    )


def _cancel(instance: DagsterInstance, run_id: str) -> None:
    """Cancel the run: one not started yet (waiting in this command for its pool) at once, a
    queued one through the queue, a started one by stopping its run worker."""
    from dagster import DagsterRunStatus

    run = instance.get_run_by_id(run_id)
    if run is not None and run.status == DagsterRunStatus.NOT_STARTED:
        instance.report_run_canceled(run, message="Canceled from ml-pipelines run (Ctrl-C) before it started.")
    else:
        instance.run_coordinator.cancel_run(run_id)


def runs_in_pool(instance: DagsterInstance, pool: str, exclude: str) -> int:
    """Runs in progress (starting, started, canceling) with a step in `pool`."""
    from dagster import RunsFilter
    from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

    records = instance.get_run_records(RunsFilter(statuses=IN_PROGRESS_RUN_STATUSES))
    return sum(
        1
        for r in records
        if r.dagster_run.run_id != exclude
        and r.dagster_run.run_op_concurrency is not None
        and pool in (r.dagster_run.run_op_concurrency.all_pools or ())
    )


def _wait_for_pool(instance: DagsterInstance, pipeline: LoadedPipeline, run_id: str, say) -> None:
    """max_active_runs without a daemon: wait while the pipeline has that many runs in progress."""
    from ml_pipelines.factory.pools import pool_of

    pool = pool_of(pipeline.config)
    if pool is None:
        return
    limit = pipeline.config.max_active_runs
    said = None
    while (busy := runs_in_pool(instance, pool, run_id)) >= limit:
        now = time.monotonic()
        if said is None or now - said >= POOL_WAIT_LOG_SECONDS:
            say(f"waiting: {busy} run(s) of {pipeline.pipeline_id} in progress (max_active_runs {limit})")
            said = now
        time.sleep(1.0)


def _step_name(step_key: str | None, pipeline_id: str) -> str:
    if not step_key:
        return "-"
    prefix = f"{pipeline_id}__"
    return step_key[len(prefix) :] if step_key.startswith(prefix) else step_key


def _first_lines(text: str, n: int = 6) -> str:
    text = (text or "").strip().removeprefix("dagster._core.definitions.events.Failure: ")
    lines = [line for line in text.splitlines() if line.strip()]
    more = f"\n    ... ({len(lines) - n} more lines in the UI)" if len(lines) > n else ""
    return "\n    ".join(lines[:n]) + more


def _describe(event: Any, pipeline_id: str, ui: str = "") -> str | None:
    """One progress line for a run event, None for the events not shown."""
    from dagster import DagsterEventType as T

    kind = event.event_type
    step = _step_name(event.step_key, pipeline_id)
    if kind == T.RUN_ENQUEUED:
        return "queued (the daemon starts it when the pipeline's max_active_runs allows)"
    if kind == T.RUN_START:
        return "run started"
    if kind == T.STEP_START:
        return f"{step}: started"
    if kind == T.STEP_SUCCESS:
        duration = getattr(event.event_specific_data, "duration_ms", None)
        return f"{step}: succeeded" + (f" in {duration / 1000:.1f}s" if duration else "")
    if kind == T.STEP_UP_FOR_RETRY:
        data = event.event_specific_data
        wait = getattr(data, "seconds_to_wait", None)
        when = f" in {wait:.0f}s" if wait else ""
        return f"{step}: failed, retried{when}:\n    {_first_lines(data.error.message if data.error else '', 3)}"
    if kind == T.STEP_RESTARTED:
        return f"{step}: retry started"
    if kind == T.STEP_FAILURE:
        error = event.event_specific_data.error
        text = error.message if error is not None else "no error message"
        return f"{step}: FAILED:\n    {_first_lines(text)}"
    if kind == T.ASSET_MATERIALIZATION:
        metadata = event.event_specific_data.materialization.metadata
        notebook = metadata.get("notebook")
        if notebook is None:
            return None
        link = str(notebook.value)
        return f"{step}: notebook {ui + link if link.startswith('/') else link}"
    if kind == T.RUN_SUCCESS:
        return "run succeeded"
    if kind == T.RUN_FAILURE:
        reason = _first_lines(event.message or "", 3)  # e.g. steps failed, or why the run could not start
        return "run FAILED" + (f": {reason}" if reason else "")
    if kind == T.RUN_CANCELED:
        return "run canceled"
    return None


def ui_url() -> str:
    return (os.environ.get("ML_PIPELINES_UI_URL") or "http://127.0.0.1:3000").strip().rstrip("/")


def follow(instance: DagsterInstance, run_id: str, pipeline_id: str, out: TextIO, timeout: float | None = None):
    """Print the run's progress until it ends; return its final status."""
    from dagster import DagsterEventType as T

    shown = {
        T.RUN_ENQUEUED, T.RUN_START, T.STEP_START, T.STEP_SUCCESS, T.STEP_UP_FOR_RETRY, T.STEP_RESTARTED,
        T.STEP_FAILURE, T.ASSET_MATERIALIZATION, T.RUN_SUCCESS, T.RUN_FAILURE, T.RUN_CANCELED,
    }  # fmt: skip
    cursor = None
    started: set[str] = set()
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        run = instance.get_run_by_id(run_id)
        finished = run is None or run.is_finished
        connection = instance.get_records_for_run(run_id, cursor=cursor, of_type=shown)
        for record in connection.records:
            entry = record.event_log_entry
            event = entry.dagster_event
            if event is None:
                continue
            if event.event_type == T.STEP_START and event.step_key:
                started.add(event.step_key)
            line = _describe(event, pipeline_id, ui_url())
            if line is not None:
                stamp = datetime.fromtimestamp(entry.timestamp).strftime("%H:%M:%S")
                print(f"{stamp}  {line}", file=out, flush=True)
        cursor = connection.cursor
        if finished and not connection.has_more:
            break
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} did not finish in {timeout:.0f}s")
        if not connection.has_more:
            time.sleep(POLL_SECONDS)
    run = instance.get_run_by_id(run_id)
    planned = set(run.step_keys_to_execute or []) if run is not None else set()
    not_run = sorted(_step_name(k, pipeline_id) for k in planned - started)
    if not_run and run is not None and run.status.value != "SUCCESS":
        print(f"not run (an upstream step failed, or the run ended first): {', '.join(not_run)}", file=out)
    return run.status if run is not None else None


def run_pipeline(
    settings: Settings,
    project: Project,
    pipeline_id: str,
    date_text: str | None,
    step_names: Sequence[str],
    dagster_home,
    out: TextIO,
    err: TextIO,
) -> int:
    from dagster import AssetKey, DagsterInstance, DagsterRunStatus

    from ml_pipelines.dagster_home import ensure_dagster_home
    from ml_pipelines.factory.assets import PIPELINE_TAG
    from ml_pipelines.factory.pools import pool_limits, sync_pool_limits

    pipeline = next(p for p in project.pipelines if p.pipeline_id == pipeline_id)
    partition = partition_key_for(pipeline, date_text)
    steps = selected_steps(pipeline, step_names)
    keys = [AssetKey([pipeline_id, name]) for name in steps]
    home = ensure_dagster_home(dagster_home)
    # the code server and run worker this command starts read the same settings
    os.environ.update(
        {
            "DAGSTER_HOME": str(home),
            "ML_PIPELINES_PROJECT_DIR": str(settings.project_dir),
            "ML_PIPELINES_ENV": settings.env,
        }
    )

    def say(text: str) -> None:
        print(f"{datetime.now().strftime('%H:%M:%S')}  {text}", file=out, flush=True)

    ui = ui_url()
    with DagsterInstance.from_config(str(home)) as instance:
        for change in sync_pool_limits(instance, pool_limits(project)):
            say(f"pool limit {change}")
        log = home / "ml-pipelines-run.log"
        say(f"loading the code location ({settings.env}, project {settings.project_dir}); Dagster's own log: {log}")
        with _workspace(instance, log) as process_context:
            context = process_context.create_request_context()
            tags = {PIPELINE_TAG: pipeline_id}
            if partition is not None:
                tags["dagster/partition"] = partition
            run = _create_run(context, instance, pipeline_id, keys, tags)
            what = f"{pipeline_id}" + (f" {partition}" if partition else "") + f" ({len(steps)} step(s))"
            say(f"run {run.run_id} of {what} on {home}; in the UI: {ui}/runs/{run.run_id}")
            try:
                if _daemon_running(instance):
                    instance.submit_run(run.run_id, context)
                else:
                    say("no dagster-daemon runs on this instance (`make dev` starts one): this command starts the run")
                    _wait_for_pool(instance, pipeline, run.run_id, say)
                    instance.launch_run(run.run_id, context)
                status = follow(instance, run.run_id, pipeline_id, out)
            except KeyboardInterrupt:
                say(f"interrupted: canceling run {run.run_id}")
                _cancel(instance, run.run_id)
                try:
                    follow(instance, run.run_id, pipeline_id, out, timeout=60)
                except TimeoutError as exc:
                    say(f"{exc}: cancel it in the UI")
                raise
    if status == DagsterRunStatus.SUCCESS:
        return 0
    outcome = {DagsterRunStatus.FAILURE: "failed", DagsterRunStatus.CANCELED: "was canceled"}
    print(f"ml-pipelines: run {run.run_id} {outcome.get(status, 'ended as ' + str(status))}", file=err)
    return 1
