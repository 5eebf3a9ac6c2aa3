"""Schedules, catchup, retries, concurrency tags and run-time templates."""

from __future__ import annotations

from datetime import datetime, timezone

from dagster import AssetKey, DagsterInstance, DagsterRun, build_schedule_context, materialize

from ml_pipelines.dagster_home import instance_config_text
from ml_pipelines.factory.assets import PIPELINE_TAG
from tests.factory.conftest import build_defs
from tests.factory.tiny_project import PIPELINE_ID, write_tiny_project

KEY = AssetKey([PIPELINE_ID, "python_script_echo"])
TICK = datetime(2024, 1, 5, 6, 0, tzinfo=timezone.utc)


def _tick(defs, instance, when=TICK):
    schedule = defs.get_repository_def().get_schedule_def(f"{PIPELINE_ID}_schedule")
    context = build_schedule_context(
        instance=instance, scheduled_execution_time=when, repository_def=defs.get_repository_def()
    )
    return schedule.evaluate_tick(context).run_requests or []


def _materialize(defs, instance, partition: str, *, raise_on_error: bool = True):
    assets_def = defs.get_assets_def(KEY)
    return materialize(
        [assets_def],
        partition_key=partition,
        instance=instance,
        resources=defs.resources,
        raise_on_error=raise_on_error,
    )


def test_schedule_requests_the_window_that_ends_at_the_tick(tmp_path, instance):
    defs = build_defs(write_tiny_project(tmp_path / "p"), tmp_path / "home")
    (request,) = _tick(defs, instance)
    assert request.partition_key == "2024-01-04"  # ds = start of the window ending at the tick
    assert list(request.asset_selection) == [KEY]
    assert request.tags[PIPELINE_TAG] == PIPELINE_ID
    schedule = defs.get_repository_def().get_schedule_def(f"{PIPELINE_ID}_schedule")
    assert schedule.job_name == PIPELINE_ID  # the pipeline's own job: the asset page lists the schedule


def test_a_pipelines_steps_are_in_its_pool_and_its_job(tmp_path):
    defs = build_defs(write_tiny_project(tmp_path / "p"), tmp_path / "home")
    assert defs.get_assets_def(KEY).op.pool == f"ml_pipelines/{PIPELINE_ID}"  # max_active_runs: 1
    job = defs.get_job_def(PIPELINE_ID)
    assert set(job.asset_layer.executable_asset_keys) == {KEY}
    assert job.tags[PIPELINE_TAG] == PIPELINE_ID


def test_catchup_requests_missed_partitions_and_skips_done_or_tried_ones(tmp_path, instance):
    defs = build_defs(write_tiny_project(tmp_path / "p", catchup=True), tmp_path / "home")
    assert [r.partition_key for r in _tick(defs, instance)] == ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]

    result = _materialize(defs, instance, "2024-01-01")
    assert result.success
    # 01-01 is done; a run materializing it carried no pipeline tag, so it counts as done, not tried
    assert [r.partition_key for r in _tick(defs, instance)] == ["2024-01-02", "2024-01-03", "2024-01-04"]

    # a run that was tried (e.g. failed) for 01-02 is not requested again by the schedule
    instance.add_run(
        DagsterRun(
            job_name="__ASSET_JOB",
            run_id="tried-0102",
            tags={PIPELINE_TAG: PIPELINE_ID, "dagster/partition": "2024-01-02"},
        )
    )
    assert [r.partition_key for r in _tick(defs, instance)] == ["2024-01-03", "2024-01-04"]


def test_no_catchup_requests_only_the_latest(tmp_path, instance):
    defs = build_defs(write_tiny_project(tmp_path / "p", catchup=False), tmp_path / "home")
    later = datetime(2024, 3, 1, 6, 0, tzinfo=timezone.utc)
    assert [r.partition_key for r in _tick(defs, instance, later)] == ["2024-02-29"]


def test_undefined_template_name_fails_the_step_naming_step_and_key(tmp_path, instance):
    # Fails from the second partition on: the load renders templates for the first one only
    # (a template that fails there is a config error, see tests/config/test_load_checks.py).
    extra = "          missing: \"{{ var.value.NOT_DEFINED_ANYWHERE if ds > '2024-01-01' else '' }}\""
    defs = build_defs(write_tiny_project(tmp_path / "p", extra=extra), tmp_path / "home")
    result = _materialize(defs, instance, "2024-01-02", raise_on_error=False)
    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "python_script_echo" in message and "templates_dict.missing" in message
    assert "NOT_DEFINED_ANYWHERE" in message


def test_script_output_reaches_the_log(tmp_path, instance):
    defs = build_defs(write_tiny_project(tmp_path / "p"), tmp_path / "home")
    result = _materialize(defs, instance, "2024-01-03")
    assert result.success
    logs = [e.message for e in instance.all_logs(result.run_id)]
    assert any("echo dt=2024-01-03" in (m or "") for m in logs)


def test_retries_and_retry_delay_become_the_retry_policy(tmp_path):
    from tests.factory.conftest import PROJECT_OK

    defs = build_defs(PROJECT_OK, tmp_path / "home")
    op = defs.get_assets_def(AssetKey(["demo_forecast_Daily", "write_to_snowflake"])).op
    assert op.retry_policy.max_retries == 2  # retries: "2"
    assert op.retry_policy.delay == 600  # retry_delay: 10 minutes


def test_shipped_instance_config_limits_pools_per_run(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(instance_config_text())
    with DagsterInstance.from_config(str(home)) as inst:
        pools = inst.get_concurrency_config().pool_config
        assert inst.get_concurrency_config().run_queue_config.max_concurrent_runs == 8
    assert pools.pool_granularity.value == "run" and pools.default_pool_limit == 1


def test_catchup_counts_a_partition_done_by_its_time_partitioned_steps(tmp_path, instance):
    # an image step is unpartitioned; as a sink of the pipeline it must not hide done partitions
    image = "      - name: ecr_container_creation\n        type: BashOperator\n        kernel: python3\n"
    root = write_tiny_project(tmp_path / "p", catchup=True, extra=image)
    defs = build_defs(root, tmp_path / "home", strict=True)
    graph = defs.resolve_asset_graph()
    assert graph.get(AssetKey([PIPELINE_ID, "ecr_container_creation"])).partitions_def is None
    assert graph.get(KEY).partitions_def is not None
    (first, *_) = _tick(defs, instance)
    assert set(first.asset_selection) == {KEY, AssetKey([PIPELINE_ID, "ecr_container_creation"])}

    assert _materialize(defs, instance, "2024-01-01").success
    assert [r.partition_key for r in _tick(defs, instance)] == ["2024-01-02", "2024-01-03", "2024-01-04"]


def test_without_pipeline_jobs_the_schedule_targets_the_implicit_asset_job(tmp_path, instance):
    # ML_PIPELINES_PIPELINE_JOBS=0: the cheaper load at 1,000 pipelines (docs/architecture.md, "Load time")
    from dataclasses import replace

    from ml_pipelines.environment import settings_from_env
    from ml_pipelines.location import build_code_location

    project = write_tiny_project(tmp_path / "p")
    settings = replace(settings_from_env(project, "LOCAL"), home=tmp_path / "home", pipeline_jobs=False)
    defs = build_code_location(settings, "ml_pipelines.definitions")
    repo = defs.get_repository_def()
    assert not repo.has_job(PIPELINE_ID)
    assert repo.get_schedule_def(f"{PIPELINE_ID}_schedule").job_name == "__ASSET_JOB"
    (request,) = _tick(defs, instance)
    assert request.partition_key == "2024-01-04" and list(request.asset_selection) == [KEY]
    assert defs.get_assets_def(KEY).op.pool == f"ml_pipelines/{PIPELINE_ID}"  # max_active_runs holds all the same
