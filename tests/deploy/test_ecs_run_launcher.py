"""A run launched as in a deployed environment: the UI's launch mutation puts it in the queue,
the daemon's queue iteration hands it to dagster-aws's `EcsRunLauncher` (deploy/dagster.yaml
as shipped), which registers a task definition and calls ECS RunTask (moto over HTTP on
127.0.0.1); then the run worker's command from that request runs here, as the ECS task would,
with the environment and secrets of the task definition, and the run succeeds in Postgres.

What stands in for AWS:
- the daemon's own ECS task: a task of moto's, with the networking, environment, secrets and
  log configuration a deployment gives the daemon; the ECS task metadata endpoint that
  `use_current_ecs_task_config` reads is a small HTTP server naming that task;
- the code server: the image's command (deploy/Dockerfile's CMD) on 127.0.0.1, with the
  DAGSTER_CURRENT_IMAGE and DAGSTER_CONTAINER_CONTEXT its task definition sets;
- the ECS task itself: moto records it and runs nothing; the test runs its command.

moto 5.2.5 quirks (platform notes): container definitions need their own `memory`, and the
VPC `EnableDnsHostnames`, else RunTask answers 500.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
from dagster_graphql.test.utils import materialize_assets

from tests.factory.tiny_project import PIPELINE_ID, write_tiny_project

from .conftest import DEPLOY
from .dockerfile import image_command

VENV_BIN = Path(sys.executable).parent
PARTITION = "2024-01-05"
STEP_KEY = AssetKey([PIPELINE_ID, "python_script_echo"])
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ml-pipelines:3f2c1ab"
ACCOUNT = "123456789012"
RUN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/ml-pipelines-run"
DAEMON_ROLE = f"arn:aws:iam::{ACCOUNT}:role/ml-pipelines-daemon"
EXECUTION_ROLE = f"arn:aws:iam::{ACCOUNT}:role/ml-pipelines-task-execution"
CONTAINER_CONTEXT = {"ecs": {"task_role_arn": RUN_ROLE, "run_resources": {"cpu": "1024", "memory": "4096"}}}
LOG_CONFIGURATION = {
    "logDriver": "awslogs",
    "options": {
        "awslogs-group": "/ecs/ml-pipelines",
        "awslogs-region": "us-east-1",
        "awslogs-stream-prefix": "dagster",
    },
}
ECS_OVERRIDES_LIMIT = 8192  # characters, RunTask's limit on `overrides`


class _Metadata(BaseHTTPRequestHandler):
    """ECS task metadata endpoint v4: `/task` names the task and cluster, `/` the container."""

    answers: dict[str, dict] = {}

    def do_GET(self):  # noqa: N802 (http.server's name)
        body = json.dumps(self.answers.get(self.path.rstrip("/") or "/", {})).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        """No request log on stderr."""


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def daemon_task(deployed_instance, monkeypatch: pytest.MonkeyPatch):
    """The daemon's ECS task as a deployment runs it, and its metadata endpoint."""
    ec2, ecs = boto3.client("ec2"), boto3.client("ecs")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="ml-pipelines", Description="dagster", VpcId=vpc)["GroupId"]
    cluster = ecs.create_cluster(clusterName="ml-pipelines")["cluster"]["clusterArn"]
    secret = boto3.client("secretsmanager").create_secret(
        Name="ml-pipelines/dagster-pg-password", SecretString=deployed_instance.env["DAGSTER_PG_PASSWORD"]
    )["ARN"]
    settings = {name: value for name, value in deployed_instance.env.items() if name != "DAGSTER_PG_PASSWORD"}
    settings.pop("DAGSTER_HOME")  # the image's ENV
    environment = [{"name": k, "value": v} for k, v in {**settings, "ML_PIPELINES_ENV": "DEV"}.items()]
    secrets = [{"name": "DAGSTER_PG_PASSWORD", "valueFrom": secret}]
    ecs.register_task_definition(
        family="ml-pipelines-daemon",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="512",
        memory="1024",
        taskRoleArn=DAEMON_ROLE,
        executionRoleArn=EXECUTION_ROLE,
        containerDefinitions=[
            {
                "name": "daemon",
                "image": IMAGE,
                "memory": 1024,  # moto wants it on the container
                "command": ["dagster-daemon", "run", "-w", "/opt/dagster/workspace.yaml"],
                "environment": environment,
                "secrets": secrets,
                "logConfiguration": LOG_CONFIGURATION,
            }
        ],
    )
    network = {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group], "assignPublicIp": "DISABLED"}}
    task = ecs.run_task(
        cluster="ml-pipelines",
        taskDefinition="ml-pipelines-daemon",
        launchType="FARGATE",
        networkConfiguration=network,
    )["tasks"][0]

    _Metadata.answers = {"/task": {"Cluster": cluster, "TaskARN": task["taskArn"]}, "/": {"Name": "daemon"}}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Metadata)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("ECS_CONTAINER_METADATA_URI_V4", f"http://127.0.0.1:{server.server_port}")
    yield {
        "cluster": cluster,
        "network": network,
        "environment": environment,
        "secrets": secrets,
    }
    server.shutdown()
    server.server_close()


@pytest.fixture
def code_server(deployed_instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The image's command, on 127.0.0.1 and a free port, serving a one-step project."""
    project = write_tiny_project(tmp_path / "project")
    port = _free_port()
    command = image_command()
    command[command.index("-h") + 1] = "127.0.0.1"
    command[command.index("-p") + 1] = str(port)
    image_env = {  # what the Dockerfile's ENV lines give every container of the image
        "ML_PIPELINES_PROJECT_DIR": str(project),
        "ML_PIPELINES_HOME": str(tmp_path / "home"),
        "DAGSTER_HOME": str(deployed_instance.dagster_home),
    }
    env = {
        **os.environ,
        **image_env,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        # the code server's task definition (roll_out.py sets DAGSTER_CURRENT_IMAGE)
        "ML_PIPELINES_ENV": "DEV",
        "DAGSTER_CURRENT_IMAGE": IMAGE,
        "DAGSTER_CONTAINER_CONTEXT": json.dumps(CONTAINER_CONTEXT),
    }
    env.pop("ML_PIPELINES_STORAGE_ROOT", None)
    log = (tmp_path / "code-server.log").open("w")
    server = subprocess.Popen(
        command, cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        _wait_for_grpc(port, server, tmp_path / "code-server.log")
        monkeypatch.setenv("DAGSTER_CODE_SERVER_HOST", "127.0.0.1")
        monkeypatch.setenv("DAGSTER_CODE_SERVER_PORT", str(port))
        yield {"project": project, "image_env": image_env}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def _wait_for_grpc(port: int, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    from dagster._grpc.client import DagsterGrpcClient

    client = DagsterGrpcClient(port=port, host="127.0.0.1")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the code server exited {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            client.ping("ready")
            return
        except Exception:
            time.sleep(0.3)
    raise AssertionError(f"the code server did not answer in {timeout} s:\n{log.read_text()[-3000:]}")


def _capture(client, operation: str) -> list[dict]:
    """The parameters of every `operation` call the boto3 client makes."""
    calls: list[dict] = []

    def record(params, **_):
        calls.append(json.loads(json.dumps(params, default=str)))

    client.meta.events.register(f"provide-client-params.{client.meta.service_model.service_name}.{operation}", record)
    return calls


def _tags(items: list[dict]) -> dict[str, str]:
    return {item["key"]: item.get("value") for item in items}


def test_queued_run_launches_as_an_ecs_task_and_its_worker_runs_it(
    deployed_instance, daemon_task, code_server, tmp_path: Path
):
    instance = DagsterInstance.get()
    try:
        launcher = instance.run_launcher
        assert type(launcher).__name__ == "EcsRunLauncher"
        run_tasks = _capture(launcher.ecs, "RunTask")
        registered = _capture(launcher.ecs, "RegisterTaskDefinition")

        with WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(DEPLOY / "workspace.yaml")])) as ws:
            # The UI's "Materialize" on a partition: the run waits in the queue.
            launched = materialize_assets(
                ws.create_request_context(), [STEP_KEY], partition_keys=[PARTITION], location_name="ml_pipelines"
            )[0]
            result = launched.data["launchPipelineExecution"]
            assert result["__typename"] == "LaunchRunSuccess", result
            run_id = result["run"]["runId"]
            assert instance.get_run_by_id(run_id).status == DagsterRunStatus.QUEUED
            assert run_tasks == []

            # One pass of the daemon's queue: it launches the run through the EcsRunLauncher.
            list(QueuedRunCoordinatorDaemon(interval_seconds=1).run_iteration(ws))

        run = instance.get_run_by_id(run_id)
        assert run.status == DagsterRunStatus.STARTING, run.status
        assert len(run_tasks) == 1, run_tasks
        request = run_tasks[0]

        # The task definition: the daemon's, with the code server's image and container context.
        assert len(registered) == 1
        definition = registered[0]
        assert definition["family"] == request["taskDefinition"]
        assert definition["family"].startswith("run")
        assert definition["taskRoleArn"] == RUN_ROLE
        assert definition["executionRoleArn"] == EXECUTION_ROLE
        assert definition["networkMode"] == "awsvpc"
        assert definition["requiresCompatibilities"] == ["FARGATE"]
        (container,) = definition["containerDefinitions"]
        assert container["name"] == "run"
        assert container["image"] == IMAGE
        assert container["secrets"] == daemon_task["secrets"]
        assert container["logConfiguration"] == LOG_CONFIGURATION
        environment = {item["name"]: item["value"] for item in container["environment"]}
        for item in daemon_task["environment"]:
            assert environment[item["name"]] == item["value"]

        # The RunTask request: the daemon's cluster and network, the run worker's command,
        # the code location's CPU and memory, the run's tags.
        assert request["cluster"] == daemon_task["cluster"]
        assert request["launchType"] == "FARGATE"
        assert request["networkConfiguration"] == daemon_task["network"]
        overrides = request["overrides"]
        assert len(json.dumps(overrides)) < ECS_OVERRIDES_LIMIT
        assert (overrides["cpu"], overrides["memory"]) == ("1024", "4096")
        (override,) = overrides["containerOverrides"]
        assert override["name"] == "run"
        assert (override["cpu"], override["memory"]) == (1024, 4096)
        command = override["command"]
        assert command[:3] == ["dagster", "api", "execute_run"]
        assert run_id in command[3]
        tags = _tags(request["tags"])
        assert tags["dagster/run_id"] == run_id
        assert tags["dagster/job_name"] == "__ASSET_JOB"
        assert tags["dagster/partition"] == PARTITION
        assert run.tags["ecs/cluster"] == daemon_task["cluster"]
        task_arn = run.tags["ecs/task_arn"]
        (task,) = boto3.client("ecs").describe_tasks(cluster=daemon_task["cluster"], tasks=[task_arn])["tasks"]
        assert task["taskDefinitionArn"].split("/")[-1].startswith(definition["family"] + ":")
    finally:
        instance.dispose()

    # The ECS task, run here: its command, with the image's ENV, the task definition's
    # environment and its secrets resolved (ECS does that from Secrets Manager).
    secrets = boto3.client("secretsmanager")
    task_env = {
        **code_server["image_env"],
        **environment,
        **{
            item["name"]: secrets.get_secret_value(SecretId=item["valueFrom"])["SecretString"]
            for item in container["secrets"]
        },
    }
    aws = {name: value for name, value in os.environ.items() if re.match(r"AWS_|ML_PIPELINES_CACHE_DIR$", name)}
    worker_env = {
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
        **aws,
        **task_env,
    }
    done = subprocess.run(
        command, env=worker_env, cwd=code_server["project"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    instance = DagsterInstance.get()
    try:
        run = instance.get_run_by_id(run_id)
        assert run.status == DagsterRunStatus.SUCCESS, "\n".join(e.user_message for e in instance.all_logs(run_id))
        records = instance.fetch_materializations(STEP_KEY, limit=10).records
        assert [(r.run_id, r.partition_key) for r in records] == [(run_id, PARTITION)]
    finally:
        instance.dispose()
