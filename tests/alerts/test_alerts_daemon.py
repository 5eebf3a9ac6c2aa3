"""End to end: a code server, a real `dagster-daemon` and the webserver on a temp instance.
The alert sensor runs without anyone starting it; a run launched as the UI's Materialize
launches it (GraphQL `launchRun`, queued, dequeued by the daemon) retries a step and
succeeds; the fake Slack receives the retry and the success, each once."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from ml_pipelines.alerts.sensors import ALERT_SENSOR_NAME
from ml_pipelines.dagster_home import instance_config_text
from tests.alerts.conftest import UI_URL, free_port, write_alerts_project

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOCATION = "ml_pipelines"
PIPELINE = "t_alerts_Daily"
PARTITION = "2024-01-03"


class Stack:
    """Child processes, each in its own session, stopped as whole process groups."""

    def __init__(self, logs: Path, env: dict[str, str], cwd: Path):
        self.logs, self.env, self.cwd = logs, env, cwd
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, command: list[str]) -> None:
        with open(self.logs / f"{name}.log", "w") as log:
            proc = subprocess.Popen(
                command, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs.append((name, proc))

    def tails(self) -> str:
        return "\n".join(
            f"--- {n}\n{(self.logs / f'{n}.log').read_text(errors='replace')[-2000:]}" for n, _ in self.procs
        )

    def check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited ({proc.returncode}):\n{self.tails()}")

    def close(self) -> None:
        for _, proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for _, proc in reversed(self.procs):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _gql(url: str, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        url,
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.loads(response.read())
    assert not body.get("errors"), body["errors"]
    return body["data"]


def _until(what: str, check, stack: Stack, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while True:
        stack.check_alive()
        with contextlib.suppress(OSError):
            value = check()
            if value:
                return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not in {timeout:.0f}s\n{stack.tails()}")
        time.sleep(0.5)


SENSOR_QUERY = """query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) {
  __typename ... on Sensor { sensorState { status ticks(limit: 20) { status skipReason error { message } } } } } }"""
LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""


@pytest.mark.timeout(300)
def test_the_daemon_sends_the_alerts_of_a_run_launched_from_the_ui(tmp_path, fake_slack):
    project = write_alerts_project(tmp_path)
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = yaml.safe_load(instance_config_text())
    config["run_launcher"] = {"module": "dagster._core.launcher", "class": "DefaultRunLauncher"}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
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
        "ML_PIPELINES_ALERT_INTERVAL_SECONDS": "1",
        "PYTHONPATH": str(REPO),
    }
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
        selector = {"repositoryLocationName": LOCATION, "repositoryName": repo, "sensorName": ALERT_SENSOR_NAME}

        def sensor_started():
            sensor = _gql(url, SENSOR_QUERY, {"s": selector})["sensorOrError"]["sensorState"]
            return sensor if sensor["ticks"] else None

        sensor = _until("the alert sensor's first tick", sensor_started, stack)
        assert sensor["status"] == "RUNNING"  # nobody turned it on
        assert sensor["ticks"][-1]["skipReason"].startswith("started")

        keys = [{"path": [PIPELINE, "python_script_flaky"]}]
        params = {
            "selector": {
                "repositoryLocationName": LOCATION,
                "repositoryName": repo,
                "pipelineName": "__ASSET_JOB",
                "assetSelection": keys,
                "assetCheckSelection": [],
            },
            "mode": "default",
            "runConfigData": {},
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": PARTITION}]},
        }
        launched = _gql(url, LAUNCH, {"params": params})["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]

        messages = _until(
            "the retry and success alerts", lambda: len(fake_slack.messages) >= 2 and fake_slack.messages, stack, 180
        )
        time.sleep(3)  # a few more ticks: nothing is sent twice
        assert len(fake_slack.messages) == 2
        retry, success = (m["text"] for m in messages)
        assert "step retried" in retry and "python_script_flaky" in retry and "first attempt fails on purpose" in retry
        assert f"*{PIPELINE}* succeeded" in success and PARTITION in success
        assert all(f"{UI_URL}/runs/{run_id}" in m["text"] for m in messages)
        assert {m["channel"] for m in messages} == {"#ds-alerts-dev"}
        ticks = _gql(url, SENSOR_QUERY, {"s": selector})["sensorOrError"]["sensorState"]["ticks"]
        assert not [t for t in ticks if t["status"] == "FAILURE"], ticks
    finally:
        stack.close()
