"""The models repo's deploy workflow (deploy/ci/models-repo-workflow.yml): its check script
runs here on a models folder, its roll-out script against moto's ECS; the workflow itself
(GitHub Actions, ECR, the push) is checked for its shape only."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import yaml

from tests.factory.tiny_project import PIPELINE_ID, write_tiny_project

REPO = Path(__file__).resolve().parents[2]
CI = REPO / "deploy" / "ci"
WORKFLOW = CI / "models-repo-workflow.yml"
VENV_BIN = Path(sys.executable).parent

_spec = importlib.util.spec_from_file_location("roll_out", CI / "roll_out.py")
roll_out = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(roll_out)


def _check(models: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(tmp_path)}
    for name in ("ML_PIPELINES_PROJECT_DIR", "ML_PIPELINES_ENV", "ML_PIPELINES_HOME", "ML_PIPELINES_STORAGE_ROOT"):
        env.pop(name, None)
    return subprocess.run(
        ["bash", str(CI / "check-models.sh"), str(models)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_check_script_validates_loads_and_runs_the_models_tests(tmp_path: Path):
    models = write_tiny_project(tmp_path / "models")
    (models / "tests").mkdir()
    (models / "tests" / "test_echo.py").write_text(
        "import os, pathlib\n"
        "def test_the_script_is_there():\n"
        "    assert (pathlib.Path(os.environ['ML_PIPELINES_PROJECT_DIR']) / 'Py_Models' / 'echo.py').exists()\n"
    )
    done = _check(models, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "== ml-pipelines validate" in done.stdout
    assert "== the code location loads (strict)" in done.stdout
    assert re.search(r"1 passed", done.stdout), done.stdout


def test_check_script_fails_on_a_broken_config(tmp_path: Path):
    models = write_tiny_project(tmp_path / "models")
    config = models / "model_configs" / "tiny.yml"
    config.write_text(config.read_text().replace('schedule_interval: "0 6 * * *"', 'schedule_interval: "every day"'))
    done = _check(models, tmp_path)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "tiny.yml" in done.stdout + done.stderr
    assert "the code location loads" not in done.stdout  # stopped at validate


OLD = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ml-pipelines:aaa-111"
NEW = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ml-pipelines:bbb-222"
SIDECAR = "public.ecr.aws/aws-observability/aws-otel-collector:v0.40.0"


def test_roll_out_moves_each_service_to_the_new_image(aws_env):
    ecs = boto3.client("ecs")
    ecs.create_cluster(clusterName="ml-pipelines-dev")
    commands = {
        "code-server": ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", "4000", "-m", "ml_pipelines.definitions"],
        "daemon": ["dagster-daemon", "run", "-w", "/opt/dagster/workspace.yaml"],
        "webserver": ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", "/opt/dagster/workspace.yaml"],
    }
    for name, command in commands.items():
        containers = [
            {
                "name": name,
                "image": OLD,
                "memory": 1024,
                "command": command,
                # the code server's sets DAGSTER_CURRENT_IMAGE already; the others get it
                "environment": [{"name": "ML_PIPELINES_ENV", "value": "DEV"}]
                + ([{"name": "DAGSTER_CURRENT_IMAGE", "value": OLD}] if name == "code-server" else []),
            },
            {"name": "otel", "image": SIDECAR, "memory": 256},
        ]
        ecs.register_task_definition(
            family=f"ml-pipelines-{name}", containerDefinitions=containers, cpu="512", memory="2048"
        )
        ecs.create_service(
            cluster="ml-pipelines-dev",
            serviceName=f"ml-pipelines-{name}",
            taskDefinition=f"ml-pipelines-{name}",
            desiredCount=1,
        )

    services = [f"ml-pipelines-{name}" for name in commands]
    # Without --wait: moto's services never become stable (its deployments stay IN_PROGRESS).
    assert roll_out.main(["--cluster", "ml-pipelines-dev", "--image", NEW, "--services", *services]) == 0

    for name, command in commands.items():
        (service,) = ecs.describe_services(cluster="ml-pipelines-dev", services=[f"ml-pipelines-{name}"])["services"]
        assert service["taskDefinition"].endswith(f"task-definition/ml-pipelines-{name}:2")
        definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
        ours, sidecar = definition["containerDefinitions"]
        assert ours["image"] == NEW and ours["command"] == command
        assert {e["name"]: e["value"] for e in ours["environment"]} == {
            "DAGSTER_CURRENT_IMAGE": NEW,
            "ML_PIPELINES_ENV": "DEV",
        }
        assert sidecar["image"] == SIDECAR
        assert (definition["cpu"], definition["memory"]) == ("512", "2048")


def test_roll_out_waits_for_each_service_before_the_next(aws_env):
    """--wait: ECS's services_stable waiter on each service, in order (recorded here: moto's
    services never become stable)."""
    real = boto3.client("ecs")
    real.create_cluster(clusterName="c")
    for name in ("code-server", "daemon"):
        real.register_task_definition(family=name, containerDefinitions=[{"name": name, "image": OLD, "memory": 256}])
        real.create_service(cluster="c", serviceName=name, taskDefinition=name, desiredCount=1)
    events: list[tuple[str, str]] = []

    class Waiter:
        def wait(self, **kwargs):
            events.append(("stable", kwargs["services"][0]))

    class Ecs:
        def __getattr__(self, name):
            return getattr(real, name)

        def update_service(self, **kwargs):
            events.append(("update", kwargs["service"]))
            return real.update_service(**kwargs)

        def get_waiter(self, name):
            assert name == "services_stable"
            return Waiter()

    roll_out.roll_out("c", ["code-server", "daemon"], NEW, wait=True, ecs=Ecs())
    assert events == [("update", "code-server"), ("stable", "code-server"), ("update", "daemon"), ("stable", "daemon")]


def test_roll_out_refuses_a_service_that_runs_another_image(aws_env):
    ecs = boto3.client("ecs")
    ecs.create_cluster(clusterName="c")
    ecs.register_task_definition(family="other", containerDefinitions=[{"name": "x", "image": SIDECAR, "memory": 256}])
    ecs.create_service(cluster="c", serviceName="other", taskDefinition="other", desiredCount=1)
    with pytest.raises(SystemExit, match="no container"):
        roll_out.roll_out("c", ["other"], NEW)
    (service,) = ecs.describe_services(cluster="c", services=["other"])["services"]
    assert service["taskDefinition"].endswith(":1")


@pytest.mark.parametrize(
    ("image", "repository"),
    [
        (NEW, "123456789012.dkr.ecr.us-east-1.amazonaws.com/ml-pipelines"),
        ("localhost:5000/ml-pipelines:1", "localhost:5000/ml-pipelines"),
        ("ml-pipelines@sha256:abc", "ml-pipelines"),
        ("ml-pipelines", "ml-pipelines"),
    ],
)
def test_repository_of_an_image(image, repository):
    assert roll_out.repository(image) == repository


def test_workflow_checks_builds_pushes_and_rolls_out_from_the_three_branches():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers["push"]["branches"] == ["develop", "beta", "production"]
    assert triggers["pull_request"]["branches"] == ["develop", "beta", "production"]

    check, deploy = workflow["jobs"]["check"], workflow["jobs"]["deploy"]
    mapping = check["steps"][0]["run"]
    for branch, environment in (("develop", "DEV"), ("beta", "BETA"), ("production", "PROD")):
        assert f'{branch}) echo "name={environment}"' in mapping
    check_runs = [step.get("run", "") for step in check["steps"]]
    assert "ml-pipelines/deploy/ci/check-models.sh models" in check_runs

    assert deploy["needs"] == "check"
    assert deploy["if"] == "github.event_name != 'pull_request'"
    assert deploy["environment"] == "${{ needs.check.outputs.environment }}"
    runs = "\n".join(step.get("run", "") for step in deploy["steps"])
    assert "docker buildx build --push" in runs
    assert "-f ml-pipelines/deploy/Dockerfile" in runs
    assert "--build-context models=models" in runs
    assert "python ml-pipelines/deploy/ci/roll_out.py" in runs
    # the order: push before roll-out
    assert runs.index("docker buildx build") < runs.index("roll_out.py")

    # every file of this repo the workflow names exists
    for path in re.findall(r"ml-pipelines/(deploy/\S+)", WORKFLOW.read_text()):
        assert (REPO / path).exists(), path
    assert PIPELINE_ID  # (the check script's test project)
