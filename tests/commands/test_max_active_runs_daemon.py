"""max_active_runs for every run, end to end: a code server and a real `dagster-daemon` on a
temporary instance with the product's instance config. Nobody sets a limit by hand: the
sensor ml_pipelines_run_limits writes the pipeline's pool limit (max_active_runs: 1); two
runs of the pipeline's job launched through the queue (as the UI's Materialize and
`ml-pipelines run` launch them): the second stays queued until the first ends. Then
`ml-pipelines run` on the same instance queues its run for the daemon."""

from __future__ import annotations

import time

import pytest
import yaml
from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import GrpcServerTarget

from ml_pipelines.cli_run import LOCATION_NAME, _create_run
from ml_pipelines.dagster_home import ensure_dagster_home
from ml_pipelines.factory.assets import PIPELINE_TAG
from tests.alerts.conftest import free_port
from tests.alerts.test_alerts_daemon import Stack
from tests.commands.conftest import BIN, REPO, command_env, ml_pipelines, write_commands_project

PIPELINE = "t_limit_Daily"
POOL = f"ml_pipelines/{PIPELINE}"
KEYS = [AssetKey([PIPELINE, "python_script_first"]), AssetKey([PIPELINE, "python_script_second"])]


def _until(what: str, check, stack: Stack, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while True:
        stack.check_alive()
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not in {timeout:.0f}s\n{stack.tails()}")
        time.sleep(0.3)


def _status(instance: DagsterInstance, run_id: str) -> DagsterRunStatus:
    return instance.get_run_by_id(run_id).status


def _event_time(instance: DagsterInstance, run_id: str, kind: DagsterEventType) -> float:
    (record,) = instance.get_records_for_run(run_id, of_type=kind).records
    return record.event_log_entry.timestamp


@pytest.mark.timeout(400)
def test_the_second_run_of_a_pipeline_waits_in_the_queue_until_the_first_ends(tmp_path):
    project = write_commands_project(tmp_path)
    home = ensure_dagster_home(tmp_path / "home" / "dagster_home")  # the product's config, as `make dev` writes it
    config = yaml.safe_load((home / "dagster.yaml").read_text())
    assert config["concurrency"]["pools"]["granularity"] == "run"
    grpc_port = free_port()
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        yaml.safe_dump(
            {"load_from": [{"grpc_server": {"host": "127.0.0.1", "port": grpc_port, "location_name": LOCATION_NAME}}]}
        )
    )
    env = command_env(project, tmp_path, DAGSTER_HOME=str(home))
    (tmp_path / "logs").mkdir()
    stack = Stack(tmp_path / "logs", env, REPO)
    try:
        stack.start(
            "code-server",
            [str(BIN / "dagster"), "code-server", "start", "-m", "ml_pipelines.definitions", "-h", "127.0.0.1",
             "-p", str(grpc_port), "--location-name", LOCATION_NAME],
        )  # fmt: skip
        from dagster._grpc.client import DagsterGrpcClient

        client = DagsterGrpcClient(port=grpc_port, host="127.0.0.1")

        def serving():
            try:
                return client.list_repositories() or True
            except Exception:  # noqa: BLE001 - not up yet
                return False

        _until("code server", serving, stack)
        with DagsterInstance.from_config(str(home)) as instance:
            assert POOL not in {p.name for p in instance.event_log_storage.get_pool_limits()}
            stack.start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)])

            def pool_limit():
                limits = {p.name: p for p in instance.event_log_storage.get_pool_limits()}
                return limits.get(POOL) if POOL in limits and not limits[POOL].from_default else None

            limit = _until("the run limits sensor writes the pool limit", pool_limit, stack)
            assert limit.limit == 1

            target = GrpcServerTarget(host="127.0.0.1", port=grpc_port, socket=None, location_name=LOCATION_NAME)
            with WorkspaceProcessContext(instance, target) as process_context:
                context = process_context.create_request_context()
                runs = {}
                for day in ("2024-01-03", "2024-01-04"):
                    tags = {PIPELINE_TAG: PIPELINE, "dagster/partition": day}
                    runs[day] = _create_run(context, instance, PIPELINE, KEYS, tags).run_id
                first, second = runs["2024-01-03"], runs["2024-01-04"]
                (tmp_path / "go-limit-2024-01-04").touch()  # the second would end at once once started
                instance.submit_run(first, context)
                _until("the first run starts", lambda: _status(instance, first) == DagsterRunStatus.STARTED, stack)
                instance.submit_run(second, context)
                time.sleep(6)  # six dequeue intervals: the daemon sees the second run and holds it
                assert _status(instance, second) == DagsterRunStatus.QUEUED, stack.tails()
                assert _status(instance, first) == DagsterRunStatus.STARTED
                daemon_log = (tmp_path / "logs" / "daemon.log").read_text()
                assert f"Run {second} is blocked by global concurrency limits" in daemon_log  # the pool, not a tag
                (tmp_path / "go-limit-2024-01-03").touch()
                for run_id in (first, second):
                    _until(f"run {run_id} ends", lambda r=run_id: instance.get_run_by_id(r).is_finished, stack, 180)
                    assert _status(instance, run_id) == DagsterRunStatus.SUCCESS, stack.tails()
                first_end = _event_time(instance, first, DagsterEventType.RUN_SUCCESS)
                second_start = _event_time(instance, second, DagsterEventType.RUN_START)
                assert second_start >= first_end

            # the terminal's way: queued for the running daemon, followed to the end
            (tmp_path / "go-limit-2024-01-05").touch()
            done = ml_pipelines(
                ["run", PIPELINE, "--date", "2024-01-05", "--dagster-home", str(home)],
                command_env(project, tmp_path),
                project,
            )
            assert done.returncode == 0, done.stdout + done.stderr + stack.tails()
            assert "queued (the daemon starts it" in done.stdout and "run succeeded" in done.stdout
    finally:
        stack.close()
