"""depends_on_past as Airflow has it: a step's partition runs when the latest earlier partition
of the same step that was ever run succeeded (or none was run); it is held, not retried, when
that run failed, and waits while that run is queued or in progress.

Real runs on an on-disk instance: schedule ticks evaluated, their run requests executed in
process. The gate script fails for a date when `fail-<date>` exists in the control folder and
blocks while `hold-<date>` exists.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterEvent,
    DagsterEventType,
    DagsterRunStatus,
    build_schedule_context,
    materialize,
)

from ml_pipelines.factory import assets as factory_assets
from ml_pipelines.factory.assets import PIPELINE_TAG, previous_attempt
from tests.factory.conftest import build_defs

PIPELINE_ID = "t_dop_Daily"
GATE = AssetKey([PIPELINE_ID, "python_script_gate"])
AFTER = AssetKey([PIPELINE_ID, "python_script_after"])
GATE_STEP, AFTER_STEP = GATE.to_python_identifier(), AFTER.to_python_identifier()

CONFIG = """\
dags:
  sagemaker:
    domain: t
    sub_domain: dop
    action: Daily
    default_args:
      owner: "Dop Team"
      start_date: "2024-1-1"
      depends_on_past: True
      retries: 3
      retry_delay: 0.001
    schedule_interval: "0 6 * * *"
    catchup: False
    max_active_runs: 1
    tasks:
      - name: python_script_gate
        type: BashOperator
        script_loc: common
        script_name: gate
        templates_dict:
          dt: "{{{{ ds }}}}"
          control: "{control}"
      - name: python_script_after
        upstream_task_name: [python_script_gate]
        type: BashOperator
        script_loc: common
        script_name: echo
        templates_dict:
          dt: "{{{{ ds }}}}"
"""

GATE_SCRIPT = """\
import os, sys, time
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
control, dt = args["--control"], args["--dt"]
deadline = time.monotonic() + 60
while os.path.exists(os.path.join(control, "hold-" + dt)) and time.monotonic() < deadline:
    time.sleep(0.05)
if os.path.exists(os.path.join(control, "fail-" + dt)):
    sys.exit("gate fails for " + dt + " on purpose")
print("gate dt=" + dt)
"""

ECHO_SCRIPT = """\
import sys
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
print("after dt=" + args["--dt"])
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("dop")
    control = root / "control"
    control.mkdir()
    (root / "p" / "model_configs").mkdir(parents=True)
    (root / "p" / "Py_Models").mkdir()
    (root / "p" / "Py_Models" / "gate.py").write_text(GATE_SCRIPT)
    (root / "p" / "Py_Models" / "echo.py").write_text(ECHO_SCRIPT)
    (root / "p" / "model_configs" / "dop.yml").write_text(CONFIG.format(control=control))
    defs = build_defs(root / "p", root / "home")  # one home: the script env is built once
    return defs, control


@pytest.fixture
def control(project):
    _, folder = project
    for marker in folder.iterdir():
        marker.unlink()
    return folder


def _tick(defs, instance, day: int) -> str:
    """Evaluate the schedule at 06:00 on 2024-01-<day>; the one partition it requests (catchup off)."""
    repo = defs.get_repository_def()
    context = build_schedule_context(
        instance=instance,
        scheduled_execution_time=datetime(2024, 1, day, 6, 0, tzinfo=timezone.utc),
        repository_def=repo,
    )
    (request,) = repo.get_schedule_def(f"{PIPELINE_ID}_schedule").evaluate_tick(context).run_requests
    assert set(request.asset_selection) == {GATE, AFTER}
    return request.partition_key


def _run(defs, instance, partition: str, keys=(GATE, AFTER)):
    return materialize(
        [defs.get_assets_def(k) for k in (GATE, AFTER)],
        selection=list(keys),
        partition_key=partition,
        instance=instance,
        resources=defs.resources,
        tags={PIPELINE_TAG: PIPELINE_ID},
        raise_on_error=False,
    )


def _events(result, step: str) -> list[str]:
    return [e.event_type_value for e in result.all_events if e.step_key == step]


def _failure(result, step: str, *, whole: bool = False) -> str:
    """The description of the step's Failure (`whole`: the error with its causes, as the UI shows it)."""
    (event,) = [e for e in result.get_step_failure_events() if e.step_key == step]
    data = event.step_failure_data
    return data.error.to_string() if whole else data.user_failure_data.description


def test_each_step_depends_on_its_own_previous_partition_in_the_lineage(project):
    defs, _ = project
    graph = defs.resolve_asset_graph()
    assert graph.get(GATE).parent_keys == {GATE}
    assert graph.get(AFTER).parent_keys == {GATE, AFTER}
    mapping = defs.get_assets_def(AFTER).get_partition_mapping(AFTER)
    assert (mapping.start_offset, mapping.end_offset) == (-1, -1)


def test_consecutive_days_run_a_failed_day_holds_the_next_until_it_is_repaired(project, control, instance):
    defs, _ = project
    # a fresh instance with catchup off: the first day runs although no earlier day ever ran
    assert _tick(defs, instance, 5) == "2024-01-04"
    assert _run(defs, instance, "2024-01-04").success
    assert _run(defs, instance, _tick(defs, instance, 6)).success  # 2024-01-05

    # 01-06: the gate really fails, so the pipeline's retries apply; its downstream step never runs
    (control / "fail-2024-01-06").touch()
    failed = _run(defs, instance, _tick(defs, instance, 7))
    assert not failed.success
    assert _events(failed, GATE_STEP).count("STEP_UP_FOR_RETRY") == 3
    assert "gate fails for 2024-01-06" in _failure(failed, GATE_STEP, whole=True)  # in the retries' causes
    assert "STEP_START" not in _events(failed, AFTER_STEP)

    # 01-07 is held at once, naming the day to repair, and not retried
    held = _run(defs, instance, _tick(defs, instance, 8))
    assert not held.success
    message = _failure(held, GATE_STEP)
    assert message == (
        f"depends_on_past: the previous run of {GATE.to_user_string()} (partition 2024-01-06, "
        f"run {failed.run_id}) failed; rerun 2024-01-06 successfully, then rerun this partition"
    )
    assert "STEP_UP_FOR_RETRY" not in _events(held, GATE_STEP)
    assert "2024-01-07" not in instance.get_materialized_partitions(GATE)

    # repairing only the gate of 01-06 is not enough for the step after it: its latest 01-06 run failed
    (control / "fail-2024-01-06").unlink()
    assert _run(defs, instance, "2024-01-06", keys=[GATE]).success
    partial = _run(defs, instance, "2024-01-07")
    assert not partial.success
    assert "STEP_SUCCESS" in _events(partial, GATE_STEP)
    after_message = _failure(partial, AFTER_STEP)
    assert f"{AFTER.to_user_string()} (partition 2024-01-06, run {failed.run_id}) failed" in after_message
    assert "STEP_UP_FOR_RETRY" not in _events(partial, AFTER_STEP)

    # rerun 01-06 successfully, then 01-07, then the next tick runs
    assert _run(defs, instance, "2024-01-06").success
    assert _run(defs, instance, "2024-01-07").success
    assert _run(defs, instance, _tick(defs, instance, 9)).success  # 2024-01-08
    days = {f"2024-01-0{d}" for d in range(4, 9)}
    assert instance.get_materialized_partitions(GATE) == days
    assert instance.get_materialized_partitions(AFTER) == days


def test_a_gap_is_fine_the_latest_earlier_run_decides(project, control, instance):
    defs, _ = project
    assert _run(defs, instance, "2024-01-02").success
    # nothing ran for 01-03..01-09 (catchup off, the schedule was stopped): 01-10 looks at 01-02
    later = _run(defs, instance, "2024-01-10")
    assert later.success
    logs = [e.user_message for e in instance.all_logs(later.run_id)]
    assert any(f"the previous run of {GATE.to_user_string()} (partition 2024-01-02) succeeded" in m for m in logs)
    # an older partition is not held by a later one
    assert _run(defs, instance, "2024-01-01").success


def _wait_for(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.mark.parametrize("outcome", ["success", "failure"])
def test_waits_while_the_previous_run_is_queued_or_in_progress(project, control, instance, monkeypatch, outcome):
    """The previous partition's run is a real run of the job (created, so queued with its planned
    event) moved through its states from another thread; this partition's run executes for real.
    (Two in-process runs in threads can deadlock in Dagster's logging set-up, hence not two runs.)"""
    defs, _ = project
    monkeypatch.setattr(factory_assets, "PAST_RUN_POLL_SECONDS", 0.05)
    job = defs.resolve_implicit_global_asset_job_def()
    previous = instance.create_run_for_job(
        job, asset_selection=frozenset({GATE}), tags={"dagster/partition": "2024-01-04"}
    )

    def waiting(status: str) -> bool:
        return any(
            f"depends_on_past: waiting for run {previous.run_id} ({status}) of {GATE.to_user_string()} "
            "partition 2024-01-04" in (e.user_message or "")
            for run in instance.get_runs()
            if run.run_id != previous.run_id
            for e in instance.all_logs(run.run_id)
        )

    def previous_run_goes_on() -> None:
        _wait_for(lambda: waiting("NOT_STARTED"))
        instance.report_dagster_event(DagsterEvent(DagsterEventType.RUN_START.value, job.name), previous.run_id)
        _wait_for(lambda: waiting("STARTED"))  # a status change is logged
        if outcome == "success":
            instance.report_runless_asset_event(AssetMaterialization(GATE, partition="2024-01-04"))
            instance.report_dagster_event(DagsterEvent(DagsterEventType.RUN_SUCCESS.value, job.name), previous.run_id)
        else:
            instance.report_run_failed(instance.get_run_by_id(previous.run_id))

    mover = threading.Thread(target=previous_run_goes_on)
    mover.start()
    result = _run(defs, instance, "2024-01-05", keys=[GATE])
    mover.join(30)
    assert not mover.is_alive()
    assert instance.get_run_by_id(previous.run_id).status == (
        DagsterRunStatus.SUCCESS if outcome == "success" else DagsterRunStatus.FAILURE
    )
    if outcome == "success":
        assert result.success
    else:
        assert not result.success
        assert f"(partition 2024-01-04, run {previous.run_id}) failed" in _failure(result, GATE_STEP)
        assert "STEP_UP_FOR_RETRY" not in _events(result, GATE_STEP)


def test_previous_attempt_reads_planned_and_materialized_events(project, control, instance):
    defs, _ = project
    partitions_def = defs.get_assets_def(GATE).partitions_def
    assert previous_attempt(instance, GATE, partitions_def, "2024-01-03") is None
    (control / "fail-2024-01-02").touch()
    failed = _run(defs, instance, "2024-01-02")
    assert not failed.success
    attempt = previous_attempt(instance, GATE, partitions_def, "2024-01-03")
    assert (attempt.partition, attempt.outcome, attempt.run_id, attempt.status) == (
        "2024-01-02",
        "failed",
        failed.run_id,
        "FAILURE",
    )
    assert previous_attempt(instance, GATE, partitions_def, "2024-01-02") is None  # earlier only
    # a run of an earlier partition created but not started yet counts as in progress
    job = defs.resolve_implicit_global_asset_job_def()
    queued = instance.create_run_for_job(
        job, asset_selection=frozenset({GATE}), tags={"dagster/partition": "2024-01-02"}
    )
    attempt = previous_attempt(instance, GATE, partitions_def, "2024-01-05")
    assert (attempt.outcome, attempt.run_id, attempt.status) == ("running", queued.run_id, "NOT_STARTED")
    instance.report_run_canceled(queued)
    attempt = previous_attempt(instance, GATE, partitions_def, "2024-01-05")
    assert (attempt.outcome, attempt.run_id, attempt.status) == ("failed", queued.run_id, "CANCELED")
    assert [
        e
        for e in instance.all_logs(queued.run_id)
        if e.dagster_event_type is DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    ]
