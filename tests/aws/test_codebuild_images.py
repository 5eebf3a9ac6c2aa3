"""CodeBuildImageBackend over HTTP against the moto server (S3, ECR, CodeBuild).

moto's builds push nothing: where a test needs the image in ECR after the build, a hook on
StartBuild puts it there, tagged with the IMAGE_TAG the request carried."""

import io
import json
import os
import time
import zipfile
from pathlib import Path

import boto3
import pytest
from dagster import DagsterExecutionInterruptedError, build_asset_context

from ml_pipelines.aws.images import BUILDSPEC, CodeBuildImageBackend, build_context_files, write_context_zip
from ml_pipelines.aws.storage import S3Storage
from ml_pipelines.plan.model import ContainerImagePlan, RunIdentity
from ml_pipelines.steps import StepFailed, StepPreconditionFailed

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "containers" / "python3" / "Dockerfile"
BUCKET = "ml-build-context"
REPOSITORY = "ml-notebooks"
PROJECT = "ml-image-builds"
TAG = "3f9a0c1d2e4b5a69"
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 1234,
            "digest": "sha256:" + "a" * 64,
        },
        "layers": [],
    }
)


@pytest.fixture
def aws(aws_env):
    """The bucket, repository and project the backend is configured with."""
    s3, ecr, codebuild = (boto3.client(name) for name in ("s3", "ecr", "codebuild"))
    s3.create_bucket(Bucket=BUCKET)
    ecr.create_repository(repositoryName=REPOSITORY)
    codebuild.create_project(
        name=PROJECT,
        source={"type": "S3", "location": f"{BUCKET}/placeholder.zip"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
            "privilegedMode": True,
        },
        serviceRole="arn:aws:iam::123456789012:role/codebuild",
    )
    return {"s3": s3, "ecr": ecr, "codebuild": codebuild}


@pytest.fixture
def calls(monkeypatch):
    """(operation, params) of every call the backend and its storage send; `hooks[op]` runs after `op`."""
    seen: list[tuple[str, dict]] = []
    hooks: dict[str, object] = {}

    def instrument(client):
        def record(model, params, **_):
            seen.append((model.name, dict(params)))

        def after(model, parsed, **_):
            if model.name in hooks:
                hooks[model.name](seen, parsed)

        client.meta.events.register("before-parameter-build", record)
        client.meta.events.register("after-call", after)
        return client

    backend_client, storage_client = CodeBuildImageBackend.client, S3Storage.client
    monkeypatch.setattr(
        CodeBuildImageBackend, "client", lambda self, service: instrument(backend_client(self, service))
    )
    monkeypatch.setattr(S3Storage, "client", lambda self: instrument(storage_client(self)))
    return seen, hooks


def _names(seen):
    return [name for name, _ in seen]


def _push_image_on_start(seen, parsed):
    """What a real build's `docker push` would leave in ECR."""
    params = next(p for name, p in reversed(seen) if name == "StartBuild")
    tag = next(v["value"] for v in params["environmentVariablesOverride"] if v["name"] == "IMAGE_TAG")
    boto3.client("ecr").put_image(repositoryName=REPOSITORY, imageManifest=MANIFEST, imageTag=tag)


@pytest.fixture
def plan(tmp_path):
    model_dir = tmp_path / "models" / "forecast"
    model_dir.mkdir(parents=True)
    requirements = model_dir / "requirements.txt"
    requirements.write_text("pandas==2.2.2\n")
    return ContainerImagePlan(
        run=RunIdentity(pipeline_id="forecast_daily", step_name="image", env="DEV", window=None),
        kernel="python3",
        model_dir=model_dir,
        requirements_file=requirements,
        dockerfile=DOCKERFILE,
        content_hash=TAG,
        image_name="forecast_daily-python3",
    )


def _backend(**overrides):
    settings = {
        "storage": S3Storage(),
        "ecr_repository": REPOSITORY,
        "codebuild_project": PROJECT,
        "context_bucket": BUCKET,
        "context_prefix": "image-builds/dev",
        "poll_initial_s": 0.01,
        "poll_max_s": 0.03,
    }
    settings.update(overrides)
    return CodeBuildImageBackend(**settings)


def _digest(ecr, tag):
    return ecr.describe_images(repositoryName=REPOSITORY, imageIds=[{"imageTag": tag}])["imageDetails"][0][
        "imageDigest"
    ]


def test_existing_tag_is_reused_without_a_build(aws, plan, calls):
    seen, _ = calls
    aws["ecr"].put_image(repositoryName=REPOSITORY, imageManifest=MANIFEST, imageTag=TAG)

    outcome = _backend().build(build_asset_context(), plan)

    assert "StartBuild" not in _names(seen)
    assert "PutObject" not in _names(seen)
    uri = aws["ecr"].describe_repositories(repositoryNames=[REPOSITORY])["repositories"][0]["repositoryUri"]
    assert uri == f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{REPOSITORY}"
    assert outcome.metadata["reused"] is True
    assert outcome.metadata["image_uri"] == f"{uri}:{TAG}"
    assert outcome.metadata["digest"] == _digest(aws["ecr"], TAG)


def test_build_uploads_the_context_and_starts_codebuild(aws, plan, calls):
    seen, hooks = calls
    hooks["StartBuild"] = _push_image_on_start

    outcome = _backend().build(build_asset_context(), plan)

    key = f"image-builds/dev/forecast_daily-python3/{TAG}.zip"
    assert aws["s3"].list_objects_v2(Bucket=BUCKET)["KeyCount"] == 1
    archive = zipfile.ZipFile(io.BytesIO(aws["s3"].get_object(Bucket=BUCKET, Key=key)["Body"].read()))
    assert archive.namelist() == ["Dockerfile", "papermill_entrypoint.py", "requirements.txt"]
    assert archive.read("requirements.txt") == b"pandas==2.2.2\n"
    assert archive.read("Dockerfile") == DOCKERFILE.read_bytes()

    starts = [p for name, p in seen if name == "StartBuild"]
    assert len(starts) == 1
    start = starts[0]
    assert start["projectName"] == PROJECT
    assert start["sourceTypeOverride"] == "S3"
    assert start["sourceLocationOverride"] == f"{BUCKET}/{key}"
    assert start["buildspecOverride"] == BUILDSPEC
    env = {v["name"]: v["value"] for v in start["environmentVariablesOverride"]}
    uri = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{REPOSITORY}"
    assert env == {"IMAGE_REPO": uri, "IMAGE_TAG": TAG}

    meta = outcome.metadata
    assert meta["reused"] is False
    assert meta["image_uri"] == f"{uri}:{TAG}"
    assert meta["digest"] == _digest(aws["ecr"], TAG)
    assert meta["build_id"].startswith(f"{PROJECT}:")
    assert meta["log_link"].startswith("https://")
    assert meta["build_context"] == f"s3://{BUCKET}/{key}"


def test_unchanged_context_is_not_uploaded_again(aws, plan, calls):
    seen, hooks = calls
    hooks["StartBuild"] = _push_image_on_start
    backend = _backend()
    backend.build(build_asset_context(), plan)
    assert _names(seen).count("PutObject") == 1
    # the image disappears from ECR (say, a lifecycle rule): the next run builds again
    aws["ecr"].batch_delete_image(repositoryName=REPOSITORY, imageIds=[{"imageTag": TAG}])
    seen.clear()

    outcome = backend.build(build_asset_context(), plan)

    assert _names(seen).count("StartBuild") == 1
    assert "PutObject" not in _names(seen)
    assert outcome.metadata["reused"] is False


def test_context_zip_is_deterministic(plan, tmp_path):
    files = build_context_files(plan)
    first = write_context_zip(files, tmp_path / "a.zip").read_bytes()
    for source in files.values():
        os.utime(source, (time.time() + 3600, time.time() + 3600))
    second = write_context_zip(dict(reversed(list(files.items()))), tmp_path / "b.zip").read_bytes()
    assert first == second
    Path(plan.requirements_file).write_text("pandas==2.2.3\n")
    assert write_context_zip(files, tmp_path / "c.zip").read_bytes() != first


def test_no_requirements_gives_an_empty_requirements_file(plan, tmp_path):
    files = build_context_files(ContainerImagePlan(**{**plan.__dict__, "requirements_file": None}))
    archive = zipfile.ZipFile(write_context_zip(files, tmp_path / "ctx.zip"))
    assert archive.read("requirements.txt") == b""


def test_missing_dockerfile_is_a_precondition_failure(plan, tmp_path):
    missing = ContainerImagePlan(**{**plan.__dict__, "kernel": "r", "dockerfile": None})
    with pytest.raises(StepPreconditionFailed, match="containers/r/Dockerfile"):
        build_context_files(missing)


def test_polls_with_backoff_until_the_build_ends(aws, plan, calls, monkeypatch):
    seen, hooks = calls
    hooks["StartBuild"] = _push_image_on_start
    polls = []

    def still_running(seen, parsed):
        polls.append(1)
        if len(polls) <= 3:
            parsed["builds"][0].update(buildStatus="IN_PROGRESS", currentPhase="BUILD")

    hooks["BatchGetBuilds"] = still_running
    waits = []
    monkeypatch.setattr("ml_pipelines.aws.images.time.sleep", waits.append)

    outcome = _backend().build(build_asset_context(), plan)

    assert waits == [0.01, 0.02, 0.03, 0.03]
    assert len(polls) == 4
    assert outcome.metadata["reused"] is False


def test_failed_build_fails_the_step_with_its_id_phase_and_logs(aws, plan, calls):
    seen, hooks = calls

    def failed(seen, parsed):
        build = parsed["builds"][0]
        build["buildStatus"] = "FAILED"
        build["currentPhase"] = "COMPLETED"
        for phase in build["phases"]:
            if phase["phaseType"] == "BUILD":
                phase["phaseStatus"] = "FAILED"
                phase["contexts"] = [{"statusCode": "COMMAND_EXECUTION_ERROR", "message": "pip install: exit 1"}]

    hooks["BatchGetBuilds"] = failed

    with pytest.raises(StepFailed) as raised:
        _backend().build(build_asset_context(), plan)

    assert not isinstance(raised.value, StepPreconditionFailed)
    build_id = next(b for b in aws["codebuild"].list_builds_for_project(projectName=PROJECT)["ids"])
    message = str(raised.value)
    assert build_id in message
    assert "FAILED in phase BUILD" in message
    assert "pip install: exit 1" in message
    assert "logs: https://" in message


def test_build_that_pushes_nothing_fails(aws, plan, calls):
    with pytest.raises(StepFailed, match=f"succeeded but pushed no image tagged {TAG}"):
        _backend().build(build_asset_context(), plan)


def test_missing_repository_is_a_precondition_failure(aws, plan, calls):
    seen, _ = calls
    with pytest.raises(StepPreconditionFailed, match="'no-such-repo' .*ecr_repository"):
        _backend(ecr_repository="no-such-repo").build(build_asset_context(), plan)
    assert "StartBuild" not in _names(seen)


def test_missing_project_is_a_precondition_failure(aws, plan, calls):
    with pytest.raises(StepPreconditionFailed, match="'no-such-project' .*codebuild_project"):
        _backend(codebuild_project="no-such-project").build(build_asset_context(), plan)


def test_unset_settings_are_named(aws_env, plan):
    with pytest.raises(StepPreconditionFailed, match="ecr_repository .*codebuild_project"):
        _backend(ecr_repository="", codebuild_project="").build(build_asset_context(), plan)


def test_runs_as_a_dagster_resource_with_nested_storage(aws, plan):
    from dagster import AssetExecutionContext, asset, materialize

    aws["ecr"].put_image(repositoryName=REPOSITORY, imageManifest=MANIFEST, imageTag=TAG)

    @asset
    def image(context: AssetExecutionContext, images: CodeBuildImageBackend):
        assert isinstance(images.storage, S3Storage)
        return images.build(context, plan).metadata["image_uri"]

    result = materialize([image], resources={"images": _backend()})

    assert result.success
    assert result.output_for_node("image").endswith(f"/{REPOSITORY}:{TAG}")


def test_interrupt_stops_the_build(aws, plan, calls, monkeypatch):
    """The Dagster run is terminated while the build runs: the build is stopped too."""
    seen, hooks = calls

    def still_running(seen, parsed):
        parsed["builds"][0].update(buildStatus="IN_PROGRESS", currentPhase="BUILD")

    def interrupt(_seconds):
        raise DagsterExecutionInterruptedError()

    hooks["BatchGetBuilds"] = still_running
    monkeypatch.setattr("ml_pipelines.aws.images.time.sleep", interrupt)
    with pytest.raises(DagsterExecutionInterruptedError):
        _backend().build(build_asset_context(), plan)
    stops = [p for name, p in seen if name == "StopBuild"]
    assert len(stops) == 1 and stops[0]["id"].startswith(f"{PROJECT}:")
