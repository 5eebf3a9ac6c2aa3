"""End to end: a code server, a real `dagster-daemon` and the webserver on a temp instance, all
on 127.0.0.1. Two pipelines wait on a third (every-minute crons, their schedules started as
the UI starts them). At the minute's tick the waits sensor opens both waits; the UI's API
shows what each waits on and since when. The awaited step is launched as the UI launches a
run; the sensor then launches the first pipeline's step after its wait (a real run through
the queue and a run worker). The second wait times out: its check fails for the partition in
the UI and the fake Slack gets the failure alert."""

from __future__ import annotations

import os
import re
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from dagster import AssetKey, DagsterInstance
from dagster._core.instance.ref import InstanceRef

from ml_pipelines.waits.sensor import LAUNCHED_BY_TAG, WAIT_CHECK_NAME, WAIT_SENSOR_NAME
from tests.alerts.conftest import UI_URL, free_port
from tests.alerts.test_alerts_daemon import LAUNCH, SENSOR_QUERY, Stack, _gql, _until

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOCATION = "ml_pipelines"

PIPELINE = """\
dags:
  sagemaker:
    domain: t
    sub_domain: {sub}
    action: Minutely
    default_args: {{owner: "E2E Team", start_date: "{start}", retries: 0}}
    schedule_interval: "* * * * *"
    slack_channel:
      NON-PROD: "#waits-e2e"
    tasks:
{tasks}
"""
UP_TASKS = """\
      - {name: python_script_a, script_loc: common, script_name: echo}
      - {name: python_script_never, script_loc: common, script_name: echo}"""
WAIT_TASKS = """\
      - name: wait_up
        type: ExternalTaskSensor
        external_dag_details:
          external_dag_id: t_up_Minutely
          external_task_id: {task}
          poke_interval: 1
          timeout: {timeout}
      - {{name: python_script_after, script_loc: common, script_name: echo, upstream_task_name: wait_up}}"""

UP, DOWN, LATE = "t_up_Minutely", "t_down_Minutely", "t_late_Minutely"
START_SCHEDULE = """mutation($s: ScheduleSelector!) { startSchedule(scheduleSelector: $s) {
  __typename ... on ScheduleStateResult { scheduleState { status } } ... on PythonError { message } } }"""
OBSERVATIONS = """query($k: AssetKeyInput!, $p: [String!]) { assetOrError(assetKey: $k) {
  ... on Asset { assetObservations(partitions: $p) { description partition } } } }"""
CHECKS = """query($k: AssetKeyInput!, $c: String!, $p: String) {
  assetCheckExecutions(assetKey: $k, checkName: $c, limit: 5, partition: $p) {
    status partition evaluation { description } } }"""


def write_project(root: Path) -> Path:
    project = root / "p"
    (project / "model_configs").mkdir(parents=True)
    (project / "Py_Models").mkdir()
    (project / "Py_Models" / "echo.py").write_text("print('echo')\n")
    start = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%d")
    configs = {
        "up.yml": PIPELINE.format(sub="up", start=start, tasks=UP_TASKS),
        "down.yml": PIPELINE.format(
            sub="down", start=start, tasks=WAIT_TASKS.format(task="python_script_a", timeout=600)
        ),
        "late.yml": PIPELINE.format(
            sub="late", start=start, tasks=WAIT_TASKS.format(task="python_script_never", timeout=3)
        ),
    }
    for name, text in configs.items():
        (project / "model_configs" / name).write_text(text)
    return project


@pytest.mark.timeout(420)
def test_the_daemon_opens_waits_launches_after_them_and_fails_them(tmp_path, fake_slack):
    project = write_project(tmp_path)
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = yaml.safe_load((REPO / "ml_pipelines" / "instance" / "dagster.yaml").read_text())
    config["run_launcher"] = {"module": "dagster._core.launcher", "class": "DefaultRunLauncher"}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))  # created before the daemon starts
    grpc_port, web_port = free_port(), free_port()
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        yaml.safe_dump(
            {"load_from": [{"grpc_server": {"host": "127.0.0.1", "port": grpc_port, "location_name": LOCATION}}]}
        )
    )
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ML_PIPELINES_ENV": "LOCAL",
        "ML_PIPELINES_PROJECT_DIR": str(project),
        "ML_PIPELINES_HOME": str(tmp_path / "state"),
        "ML_PIPELINES_SLACK_TOKEN": "xoxb-e2e",
        "ML_PIPELINES_SLACK_API_URL": fake_slack.url,
        "ML_PIPELINES_UI_URL": UI_URL,
        "ML_PIPELINES_WAIT_INTERVAL_SECONDS": "1",
        "PYTHONPATH": str(REPO),
    }
    env.pop("ML_PIPELINES_AIRFLOW_URL", None)
    (tmp_path / "logs").mkdir()
    stack = Stack(tmp_path / "logs", env, REPO)
    try:
        stack.start(
            "code-server",
            [str(BIN / "dagster"), "code-server", "start", "-m", "ml_pipelines.definitions", "-h", "127.0.0.1",
             "-p", str(grpc_port), "--location-name", LOCATION],
        )  # fmt: skip
        from dagster._grpc.client import DagsterGrpcClient

        client = DagsterGrpcClient(port=grpc_port, host="127.0.0.1")

        def serving():
            try:
                return client.list_repositories() or True
            except Exception:  # noqa: BLE001 - not up yet
                return False

        _until("code server", serving, stack)
        stack.start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)])
        stack.start(
            "webserver", [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(web_port), "-w", str(workspace)]
        )
        url = f"http://127.0.0.1:{web_port}/graphql"
        repo = _until(
            "webserver",
            lambda: _gql(url, "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }")[
                "repositoriesOrError"
            ]["nodes"][0]["name"],
            stack,
        )
        base = {"repositoryLocationName": LOCATION, "repositoryName": repo}
        for pipeline in (DOWN, LATE):  # as the UI's schedule toggle does
            started = _gql(url, START_SCHEDULE, {"s": {**base, "scheduleName": f"{pipeline}_schedule"}})
            assert started["startSchedule"]["scheduleState"]["status"] == "RUNNING", started
        sensor_selector = {**base, "sensorName": WAIT_SENSOR_NAME}

        def ticks():
            return _gql(url, SENSOR_QUERY, {"s": sensor_selector})["sensorOrError"]["sensorState"]["ticks"]

        def opened():
            for tick in ticks():
                match = re.search(rf"{DOWN}\.wait_up \[([0-9:-]+)\] since", tick.get("skipReason") or "")
                if match:
                    return match.group(1)
            return None

        partition = _until("the waits open at the minute's tick", opened, stack, 150)
        state = _gql(url, SENSOR_QUERY, {"s": sensor_selector})["sensorOrError"]["sensorState"]
        assert state["status"] == "RUNNING"  # nobody turned it on
        # the UI: the wait's asset shows what it waits on and since when, for the partition
        wait_key = {"path": [DOWN, "wait_up"]}
        observations = _gql(url, OBSERVATIONS, {"k": wait_key, "p": [partition]})["assetOrError"]["assetObservations"]
        assert observations[0]["description"].startswith("Waiting since ")
        assert f"for {UP}.python_script_a (success)" in observations[0]["description"]

        # the awaited step, launched as the UI launches a run
        params = {
            "selector": {**base, "pipelineName": "__ASSET_JOB", "assetSelection": [{"path": [UP, "python_script_a"]}],
                         "assetCheckSelection": []},
            "mode": "default",
            "runConfigData": {},
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
        }  # fmt: skip
        assert _gql(url, LAUNCH, {"params": params})["launchRun"]["__typename"] == "LaunchRunSuccess"
        awaited_at = None

        def awaited_materialized():
            nonlocal awaited_at
            event = instance.get_latest_materialization_event(AssetKey([UP, "python_script_a"]))
            if event is not None and awaited_at is None:
                awaited_at = event.timestamp
            return event is not None

        _until("the awaited step", awaited_materialized, stack, 120)

        def launched_run():
            from dagster import DagsterRunStatus, RunsFilter

            records = instance.get_run_records(RunsFilter(tags={LAUNCHED_BY_TAG: "wait_up"}))
            down = [r for r in records if r.dagster_run.tags.get("ml_pipelines/pipeline") == DOWN]
            return down and down[0].dagster_run.status == DagsterRunStatus.SUCCESS and down[0]

        record = _until("the run the waits sensor launched", launched_run, stack, 120)
        print(
            f"\nawaited materialization -> downstream run created: {record.create_timestamp.timestamp() - awaited_at:.1f} s"
        )
        assert record.dagster_run.tags["dagster/partition"] == partition
        assert partition in instance.get_materialized_partitions(AssetKey([DOWN, "python_script_after"]))
        assert partition in instance.get_materialized_partitions(AssetKey([DOWN, "wait_up"]))

        # the other wait timed out (3 s): the failure alert, and its check failed for the partition
        def failure_alert():
            return [m for m in fake_slack.messages if f"*{LATE}* failed" in m["text"]]

        (message,) = _until("the timed-out wait's alert", failure_alert, stack, 90)
        assert "timed out after 3 s" in message["text"] and "Not run: python_script_after" in message["text"]
        assert message["channel"] == "#waits-e2e"
        assert f"{UI_URL}/assets/{LATE}/wait_up?view=events&partition=" in message["text"]
        late_key = {"path": [LATE, "wait_up"]}
        checks = _gql(url, CHECKS, {"k": late_key, "c": WAIT_CHECK_NAME, "p": None})["assetCheckExecutions"]
        assert checks and checks[0]["status"] == "FAILED"
        assert checks[0]["evaluation"]["description"].startswith("FAILED: timed out after 3 s")
        late_partition = checks[0]["partition"]
        late_runs = [r for r in instance.get_run_records() if r.dagster_run.tags.get("ml_pipelines/pipeline") == LATE]
        assert not late_runs  # its step after the wait never ran (and its schedule had nothing else to run)
        assert late_partition and not instance.get_materialized_partitions(AssetKey([LATE, "python_script_after"]))
        time.sleep(2)
        assert not [t for t in ticks() if t["status"] == "FAILURE"]
        assert len(failure_alert()) == 1
    finally:
        stack.close()
