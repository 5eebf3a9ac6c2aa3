"""deploy/Dockerfile: what can be checked without Docker always (what it copies exists and
is not ignored, its command serves the code location's module), and the image itself where
a Docker daemon answers (`docker info`)."""

from __future__ import annotations

import fnmatch
import os
import shlex
import shutil
import subprocess
import tomllib
import uuid
from pathlib import Path

import pytest
import yaml

from tests.factory.tiny_project import PIPELINE_ID, write_tiny_project

from .dockerfile import DOCKERFILE, image_command, instructions

REPO = Path(__file__).resolve().parents[2]
DOCKERIGNORE = REPO / "deploy" / "Dockerfile.dockerignore"


def _ignored(relative: str) -> bool:
    patterns = [p.strip() for p in DOCKERIGNORE.read_text().splitlines() if p.strip() and not p.startswith("#")]
    parts = relative.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        for prefix in prefixes:
            if fnmatch.fnmatch(prefix, pattern) or fnmatch.fnmatch(prefix.split("/")[-1], bare):
                return True
    return False


def test_every_copy_from_the_context_exists_and_is_not_ignored():
    copies = [i for i in instructions() if i.keyword == "COPY" and not i.args.startswith("--from")]
    assert copies
    for copy in copies:
        *sources, _destination = shlex.split(copy.args)
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: not in the build context (the repo)"
            assert not _ignored(source), f"COPY {source}: excluded by {DOCKERIGNORE.name}"


def test_the_models_stage_holds_the_project_folders_the_image_points_at():
    steps = instructions()
    models = [i for i in steps if i.stage == "models" and i.keyword == "COPY"]
    assert {shlex.split(i.args)[0] for i in models} >= {"model_configs", "Sagemaker_Models", "Glue_Models", "Py_Models"}
    env = " ".join(i.args for i in steps if i.keyword == "ENV")
    assert "ML_PIPELINES_PROJECT_DIR=/opt/models" in env
    assert any(i.keyword == "COPY" and i.args == "--from=models / /opt/models/" for i in steps)


def test_the_image_is_python_3_11_with_the_package_and_the_deployed_instance():
    steps = instructions()
    assert any(i.keyword == "ARG" and i.args == "PYTHON_IMAGE=python:3.11-slim" for i in steps)
    assert any(i.keyword == "RUN" and "pip install -e ." in i.args for i in steps)
    env = " ".join(i.args for i in steps if i.keyword == "ENV")
    assert "DAGSTER_HOME=/opt/dagster/dagster_home" in env
    assert any(i.args == "deploy/dagster.yaml /opt/dagster/dagster_home/dagster.yaml" for i in steps)


def test_the_command_serves_the_code_location_module():
    command = image_command()
    assert command[:3] == ["dagster", "api", "grpc"]
    assert command[command.index("-h") + 1] == "0.0.0.0"
    assert command[command.index("-p") + 1] == "4000"
    module = command[command.index("-m") + 1]
    assert module == "ml_pipelines.definitions"
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["tool"]["dagster"]["module_name"] == module
    (local,) = yaml.safe_load((REPO / "workspace.yaml").read_text())["load_from"]
    assert local["python_module"]["module_name"] == module
    (deployed,) = yaml.safe_load((REPO / "deploy" / "workspace.yaml").read_text())["load_from"]
    assert deployed["grpc_server"]["location_name"] == local["python_module"]["location_name"]


def _docker_unavailable() -> str | None:
    if shutil.which("docker") is None:
        return "no docker command"
    done = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return "`docker info` fails (no Docker daemon): " + (done.stderr.strip().splitlines() or [""])[-1]
    return None


@pytest.fixture(scope="module")
def docker():
    reason = _docker_unavailable()
    if reason:
        pytest.skip(f"image not built: {reason}")
    return {**os.environ, "DOCKER_BUILDKIT": "1"}


def _docker(env, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    done = subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"docker {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_the_image_builds_and_loads_the_code_location(docker, tmp_path: Path):
    """The repo's own models, then a separate models repo through `--build-context models=`."""
    tag = f"ml-pipelines-test:{uuid.uuid4().hex[:8]}"
    models = write_tiny_project(tmp_path / "models")
    (models / ".dockerignore").write_text(".git\n")
    tags = [tag, tag + "-models"]
    try:
        _docker(docker, "build", "-f", str(DOCKERFILE), "-t", tag, str(REPO))
        listed = _docker(docker, "run", "--rm", tag, "ml-pipelines", "list").stdout
        assert "max_ds_ContentForecastDaily" in listed
        # (an instance of its own: the image's dagster.yaml wants the DAGSTER_PG_* settings)
        validate = ["dagster", "definitions", "validate", "-m", "ml_pipelines.definitions"]
        _docker(docker, "run", "--rm", "-e", "DAGSTER_HOME=/tmp", tag, *validate)
        if subprocess.run(["docker", "buildx", "version"], capture_output=True).returncode == 0:
            build = ["buildx", "build", "--load", "-f", str(DOCKERFILE), "--build-context", f"models={models}"]
            _docker(docker, *build, "-t", tags[1], str(REPO))
            listed = _docker(docker, "run", "--rm", tags[1], "ml-pipelines", "list").stdout
            assert PIPELINE_ID in listed and "max_ds_ContentForecastDaily" not in listed
    finally:
        for image in tags:
            subprocess.run(["docker", "rmi", "-f", image], capture_output=True)
