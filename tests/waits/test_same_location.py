"""Waits on a pipeline of the same code location: the sensor's ticks (Dagster's sensor test
context at frozen times), the schedule's run, and the runs the sensor requests executed in
process on a temp instance."""

from __future__ import annotations

from datetime import timedelta

import pytest
from dagster import AssetKey, DagsterEventType, build_schedule_context
from dagster._core.storage.tags import SCHEDULE_NAME_TAG
from dagster._core.test_utils import freeze_time

from ml_pipelines.factory.assets import PIPELINE_TAG
from ml_pipelines.waits.sensor import LAUNCHED_BY_TAG, evaluate_waits
from tests.waits.conftest import (
    AFTER,
    DOWN,
    FIRST,
    LAST,
    PARTITION,
    TICK,
    UP,
    WAIT_KEY,
    Waits,
    details,
    location,
    write_project,
)

A = AssetKey([UP, "python_script_a"])
B = AssetKey([UP, "python_script_b"])


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """down waits for up.python_script_a, same partition, poke 60 s, timeout 600 s."""
    return location(write_project(tmp_path_factory.mktemp("plain")))


@pytest.fixture(scope="module")
def delayed(tmp_path_factory):
    """down waits for up.python_script_a one day earlier (execution_delta: timedelta(days=1))."""
    return location(write_project(tmp_path_factory.mktemp("delayed"), details(execution_delta="timedelta(days=1)")))


def _events(instance, key, event_type, partition=PARTITION):
    """The asset's materializations or observations for the partition, oldest first."""
    from dagster import AssetRecordsFilter

    records_filter = AssetRecordsFilter(asset_key=key, asset_partitions=[partition])
    fetch = {
        DagsterEventType.ASSET_OBSERVATION: instance.fetch_observations,
        DagsterEventType.ASSET_MATERIALIZATION: instance.fetch_materializations,
    }[event_type]
    return [r.event_log_entry for r in fetch(records_filter, limit=100, ascending=True).records]


def _check_history(instance):
    from dagster import AssetCheckKey

    from ml_pipelines.waits.sensor import WAIT_CHECK_NAME

    return instance.event_log_storage.get_asset_check_execution_history(AssetCheckKey(WAIT_KEY, WAIT_CHECK_NAME), 10)


def _tick_run(waits: Waits):
    """The scheduled run at the tick: what the schedule requests, executed."""
    schedule = waits.defs.get_schedule_def(f"{DOWN}_schedule")
    with freeze_time(TICK):
        context = build_schedule_context(
            instance=waits.instance, scheduled_execution_time=TICK, repository_def=waits.defs.get_repository_def()
        )
        (request,) = schedule.evaluate_tick(context).run_requests
    tags = {**request.tags, SCHEDULE_NAME_TAG: schedule.name}
    return request, waits.run(request.with_replaced_attrs(tags=tags))


def test_the_schedule_runs_only_the_steps_before_the_wait(plain, instance):
    waits = Waits(plain, instance)
    request, result = _tick_run(waits)
    assert request.partition_key == PARTITION
    assert set(request.asset_selection) == {FIRST}  # not python_script_after / _last
    assert result.success


def test_downstream_runs_only_after_the_upstream_partition_materializes(plain, instance):
    waits = Waits(plain, instance)
    waits.start()
    _tick_run(waits)
    data = waits.tick(TICK + timedelta(seconds=20))
    assert not data.run_requests
    assert "1 wait(s) open" in data.skip_message and f"{DOWN}.wait_up [{PARTITION}]" in data.skip_message
    assert "since 2024-01-05 06:00:00 UTC" in data.skip_message and "no run yet" in data.skip_message
    # the UI: an observation on the wait's asset for the partition, saying what and since when
    (observation,) = _events(instance, WAIT_KEY, DagsterEventType.ASSET_OBSERVATION)
    assert observation.asset_observation.description.startswith(
        f"Waiting since 2024-01-05 06:00:00 UTC for {UP}.python_script_a (success)"
    )
    assert observation.asset_observation.metadata["times_out_at"].value == "2024-01-05 06:10:00 UTC"

    # another partition of the upstream does not count
    assert waits.materialize(A, "2024-01-03").success
    assert not waits.tick(TICK + timedelta(seconds=90)).run_requests
    # poke_interval: 60 s after the last check, not before
    assert waits.materialize(A, PARTITION).success
    assert not waits.tick(TICK + timedelta(seconds=100)).run_requests
    data = waits.tick(TICK + timedelta(seconds=151))
    (request,) = data.run_requests
    assert request.partition_key == PARTITION
    assert list(request.asset_selection) == [AFTER, LAST]
    assert request.tags[PIPELINE_TAG] == DOWN and request.tags[LAUNCHED_BY_TAG] == "wait_up"
    assert request.run_key == f"{DOWN}:{PARTITION}:after_waits:python_script_after,python_script_last"
    assert instance.get_materialized_partitions(WAIT_KEY) == {PARTITION}  # the wait: satisfied
    (check,) = _check_history(instance)
    assert check.status.value == "SUCCEEDED" and check.partition == PARTITION
    result = waits.run(request)
    assert result.success
    assert PARTITION in instance.get_materialized_partitions(LAST)
    # resolved: nothing more is launched
    data = waits.tick(TICK + timedelta(minutes=5))
    assert not data.run_requests and data.skip_message.startswith("0 wait(s) open")


def test_a_satisfied_wait_waits_for_the_steps_of_the_ticks_run_it_needs(plain, instance):
    waits = Waits(plain, instance)
    waits.start()
    assert waits.materialize(A, PARTITION).success  # already there at the tick
    data = waits.tick(TICK + timedelta(seconds=5))
    assert not data.run_requests  # python_script_first (the tick's run) has not run yet
    assert instance.get_materialized_partitions(WAIT_KEY) == {PARTITION}
    _tick_run(waits)
    (request,) = waits.tick(TICK + timedelta(seconds=40)).run_requests
    assert set(request.asset_selection) == {AFTER, LAST}


def test_a_step_before_the_wait_that_failed_stops_the_steps_after_it(tmp_path, instance):
    defs = location(write_project(tmp_path, first_script="fail"))
    waits = Waits(defs, instance)
    waits.start()
    _, result = _tick_run(waits)
    assert not result.success  # python_script_first failed in the tick's run
    assert waits.materialize(A, PARTITION).success
    data = waits.tick(TICK + timedelta(seconds=30))
    assert not data.run_requests
    (note,) = [
        e.asset_observation
        for e in _events(instance, WAIT_KEY, DagsterEventType.ASSET_OBSERVATION)
        if e.asset_observation.description.startswith("Steps after this wait not run")
    ]
    assert "python_script_after: python_script_first did not materialize for 2024-01-04" in note.description
    assert "python_script_last: python_script_after will not run" in note.description
    assert waits.tick(TICK + timedelta(minutes=5)).skip_message.startswith("0 wait(s) open")


def test_execution_delta_shifts_the_awaited_partition(delayed, instance):
    waits = Waits(delayed, instance)
    waits.start()
    _tick_run(waits)
    assert waits.materialize(A, PARTITION).success  # the same day: not what it waits for
    data = waits.tick(TICK + timedelta(seconds=30))
    assert not data.run_requests and "partition 2024-01-03" in data.skip_message
    assert waits.materialize(A, "2024-01-03").success
    (request,) = waits.tick(TICK + timedelta(seconds=95)).run_requests
    assert request.partition_key == PARTITION


def test_timeout_fails_the_wait_does_not_run_downstream_and_alerts(plain, instance):
    waits = Waits(plain, instance)
    waits.start()
    _tick_run(waits)
    for minute in range(1, 10):
        assert not waits.tick(TICK + timedelta(minutes=minute, seconds=1)).run_requests
    assert waits.notifier.sent == []
    data = waits.tick(TICK + timedelta(minutes=10, seconds=1))  # timeout: 600 s from the tick
    assert not data.run_requests
    assert "1 failed (timed out)" in data.skip_message
    # the UI: the wait's check failed for the partition, and an observation saying why
    (check,) = _check_history(instance)
    assert check.status.value == "FAILED" and check.partition == PARTITION
    assert check.evaluation.description.startswith("FAILED: timed out after 10 min")
    failed = [e.asset_observation for e in _events(instance, WAIT_KEY, DagsterEventType.ASSET_OBSERVATION)]
    assert failed[-1].description.startswith("FAILED: timed out after 10 min")
    assert failed[-1].metadata["wait_status"].value == "failed"
    assert not instance.get_materialized_partitions(WAIT_KEY)
    # the alert, through the notifier, to the pipeline's channel and e-mail
    ((alert, route),) = waits.notifier.sent
    assert alert.kind.value == "failure" and alert.pipeline_id == DOWN and alert.partition == PARTITION
    assert alert.steps == ("wait_up",)
    assert "timed out after 10 min" in alert.errors[0].error
    assert "Not run: python_script_after, python_script_last" in alert.errors[0].error
    assert alert.run_url.endswith(f"/assets/{DOWN}/wait_up?view=events&partition={PARTITION}")
    assert route.slack_channel == "#down-alerts" and route.emails == ("down-dev@example.com",)
    # once: later ticks neither alert again nor launch
    assert not waits.tick(TICK + timedelta(minutes=30)).run_requests
    assert len(waits.notifier.sent) == 1
    assert waits.materialize(A, PARTITION).success  # too late
    assert not waits.tick(TICK + timedelta(minutes=31)).run_requests


def test_allowed_states_map_to_dagster(tmp_path, instance):
    """failed = the awaited step failed; a step never started after an upstream failure is
    upstream_failed, never allowed."""
    defs = location(
        write_project(
            tmp_path,
            details(external_task_id="python_script_b", allowed_states='"success,failed"'),
            b_script="fail",
        )
    )
    waits = Waits(defs, instance)
    waits.start()
    assert waits.materialize(FIRST, PARTITION, tags={PIPELINE_TAG: DOWN}).success
    assert not waits.tick(TICK + timedelta(seconds=10)).run_requests
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        asset_selection=[A, B], partition_key=PARTITION, instance=instance, raise_on_error=False
    )
    assert not result.success  # python_script_b failed: "failed" is allowed
    (request,) = waits.tick(TICK + timedelta(seconds=75)).run_requests
    (materialization,) = _events(instance, WAIT_KEY, DagsterEventType.ASSET_MATERIALIZATION)
    assert materialization.asset_materialization.metadata["state_seen"].value == "failed"


def test_running_is_a_run_in_progress(plain, instance):
    from ml_pipelines.waits.states import RUNNING, asset_state

    job = plain.resolve_implicit_global_asset_job_def()
    run = instance.create_run_for_job(job, asset_selection=frozenset({A}), tags={"dagster/partition": PARTITION})
    from dagster._core.events import AssetMaterializationPlannedData, DagsterEvent  # noqa: N817
    from dagster._core.events import DagsterEventType as T

    instance.report_dagster_event(
        DagsterEvent(
            event_type_value=T.ASSET_MATERIALIZATION_PLANNED.value,
            job_name=job.name,
            event_specific_data=AssetMaterializationPlannedData(A, partition=PARTITION),
        ),
        run_id=run.run_id,
    )
    instance.handle_run_event(run.run_id, DagsterEvent(T.RUN_START.value, job_name=job.name))
    assert asset_state(instance, A, PARTITION, "t_up_Daily__python_script_a") == RUNNING


def test_a_whole_pipeline_waits_for_all_its_last_steps(tmp_path, instance):
    defs = location(write_project(tmp_path, details(external_task_id="None")))
    waits = Waits(defs, instance)
    waits.start()
    assert waits.materialize(FIRST, PARTITION, tags={PIPELINE_TAG: DOWN}).success
    assert waits.materialize(A, PARTITION).success  # not a last step of up
    assert not waits.tick(TICK + timedelta(seconds=10)).run_requests
    assert waits.materialize(B, PARTITION).success
    assert waits.tick(TICK + timedelta(seconds=75)).run_requests


def test_a_stopped_schedule_opens_no_wait(plain, instance):
    from ml_pipelines.waits.index import WaitIndex  # noqa: F401 - the index the sensor uses

    sensor_index = plain.get_sensor_def("ml_pipelines_waits")
    waits = Waits(plain, instance)
    cursor = waits.start().cursor
    index = _index_of(sensor_index)
    result = evaluate_waits(
        instance, cursor, index, now=(TICK + timedelta(seconds=30)).timestamp(), running_schedules=set()
    )
    assert not result.run_requests and result.summary.startswith("0 wait(s) open")
    result = evaluate_waits(
        instance, cursor, index, now=(TICK + timedelta(seconds=30)).timestamp(), running_schedules={f"{DOWN}_schedule"}
    )
    assert result.summary.startswith("1 wait(s) open")


def _index_of(sensor_def):
    """The WaitIndex the sensor was built with (from its evaluation function's closure)."""
    from ml_pipelines.waits.index import WaitIndex

    fn = sensor_def._raw_fn  # noqa: SLF001
    for cell in fn.__closure__ or ():
        if isinstance(cell.cell_contents, WaitIndex):
            return cell.cell_contents
    raise AssertionError("no WaitIndex in the sensor's closure")


def test_catchup_partitions_launched_by_the_schedule_open_their_waits(tmp_path, instance):
    defs = location(write_project(tmp_path, catchup=True))
    waits = Waits(defs, instance)
    waits.start()
    older = "2024-01-02"
    schedule = f"{DOWN}_schedule"
    assert waits.materialize(FIRST, older, tags={PIPELINE_TAG: DOWN, SCHEDULE_NAME_TAG: schedule}).success
    data = waits.tick(TICK + timedelta(seconds=10))
    assert f"[{older}]" in data.skip_message and f"[{PARTITION}]" in data.skip_message
    assert waits.materialize(A, older).success
    (request,) = waits.tick(TICK + timedelta(seconds=75)).run_requests
    assert request.partition_key == older


def test_a_run_by_hand_is_not_gated(plain, instance):
    waits = Waits(plain, instance)
    result = waits.materialize(AFTER, PARTITION)  # the wait's upstream never materialized
    assert result.success
    assert PARTITION in instance.get_materialized_partitions(AFTER)


def test_a_tick_hands_the_daemon_a_bounded_number_of_events(plain, instance, monkeypatch):
    """The daemon writes each asset event a tick returns: past MAX_EVENTS_PER_TICK the checks
    wait for the next tick."""
    import ml_pipelines.waits.sensor as sensor_module

    waits = Waits(plain, instance)
    waits.start()
    assert waits.materialize(A, PARTITION).success
    monkeypatch.setattr(sensor_module, "MAX_EVENTS_PER_TICK", 1)  # the opening observation fills it
    data = waits.tick(TICK + timedelta(seconds=10))
    assert "1 checks deferred to the next tick" in data.skip_message and len(data.asset_events) == 1
    monkeypatch.setattr(sensor_module, "MAX_EVENTS_PER_TICK", 1_000)
    waits.tick(TICK + timedelta(seconds=20))
    assert instance.get_materialized_partitions(WAIT_KEY) == {PARTITION}
