"""The fakes of fake_aws.py, through plain boto3 against the moto server: processing jobs run
their container (a real papermill run), CodeBuild builds push their image to ECR."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from typing import Any

import boto3
import nbformat
import pytest
from botocore.exceptions import ClientError

BUCKET = "forecast-dev"
BASE = f"s3://{BUCKET}/sagemaker-models-dev/Forecast/DailyForecast"
ROLE = "arn:aws:iam::123456789012:role/sagemaker-processing"
REPO_URI = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ml-notebooks"
LOG_GROUP = "/aws/sagemaker/ProcessingJobs"

WRITE_RESULT = """
import json, os, forecast_lib
print("horizon is", horizon_days)
with open(os.path.join(output_dir, "forecast.json"), "w") as f:
    json.dump({"horizon_days": horizon_days, "dt": dt, "ENV": ENV, "lib": forecast_lib.NAME}, f)
"""


def notebook_bytes(*cells: str) -> bytes:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("horizon_days = 1\ndt = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(c) for c in cells)]
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    return nbformat.writes(nb).encode()


def stage(s3: Any, run: str, *cells: str) -> tuple[str, str, str]:
    """The run's input folder (notebook + lib/), its parameter object; → input, parameters, output URIs."""
    input_uri, output_uri = f"{BASE}/input/runs/{run}/", f"{BASE}/output/runs/{run}/"
    prefix = input_uri.removeprefix(f"s3://{BUCKET}/")
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}DailyForecast.ipynb", Body=notebook_bytes(*cells))
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}lib/forecast_lib.py", Body=b"NAME = 'forecast_lib'\n")
    params = json.dumps({"horizon_days": 7, "dt": "2024-02-01", "ENV": "DEV"}, sort_keys=True).encode()
    params_key = f"sagemaker-models-dev/Forecast/DailyForecast/parameters/{hashlib.sha256(params).hexdigest()}.json"
    s3.put_object(Bucket=BUCKET, Key=params_key, Body=params)
    return input_uri, f"s3://{BUCKET}/{params_key}", output_uri


def request(name: str, input_uri: str, params_uri: str, output_uri: str) -> dict[str, Any]:
    """Shaped like SageMakerNotebookBackend.request() with its two inputs."""
    return {
        "ProcessingJobName": name,
        "RoleArn": ROLE,
        "AppSpecification": {
            "ImageUri": f"{REPO_URI}:abc123",
            "ContainerEntrypoint": ["python3", "/opt/ml/code/papermill_entrypoint.py"],
            "ContainerArguments": ["--notebook", "DailyForecast", "--env", "DEV", "--kernel", "python3"]
            + ["--parameters", f"/opt/ml/processing/parameters/{params_uri.rsplit('/', 1)[-1]}"],
        },
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30}
        },
        "ProcessingInputs": [
            {"InputName": "input", "S3Input": s3_input(input_uri, "/opt/ml/processing/input")},
            {"InputName": "parameters", "S3Input": s3_input(params_uri, "/opt/ml/processing/parameters")},
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "output",
                    "S3Output": {
                        "S3Uri": output_uri,
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "Environment": {"ENV": "DEV", "NOTEBOOK_NAME": "DailyForecast"},
    }


def s3_input(uri: str, local: str) -> dict[str, str]:
    return {
        "S3Uri": uri,
        "LocalPath": local,
        "S3DataType": "S3Prefix",
        "S3InputMode": "File",
        "S3DataDistributionType": "FullyReplicated",
    }


def wait_for(sm: Any, name: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = sm.describe_processing_job(ProcessingJobName=name)
        if job["ProcessingJobStatus"] not in ("InProgress", "Stopping"):
            return job
        assert time.monotonic() < deadline, f"{name} still {job['ProcessingJobStatus']}"
        time.sleep(0.1)


def log_lines(logs: Any, name: str) -> list[str]:
    try:
        events = logs.filter_log_events(logGroupName=LOG_GROUP, logStreamNamePrefix=f"{name}/")["events"]
    except logs.exceptions.ResourceNotFoundException:  # no log group before the first job starts
        return []
    return [e["message"] for e in events]


def read_s3(s3: Any, uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


@pytest.fixture
def aws(aws_env):
    clients = {name: boto3.client(name) for name in ("s3", "sagemaker", "logs", "ecr", "codebuild")}
    clients["s3"].create_bucket(Bucket=BUCKET)
    return clients


def test_job_runs_the_notebook_and_completes(aws, fake_sagemaker):
    s3, sm = aws["s3"], aws["sagemaker"]
    input_uri, params_uri, output_uri = stage(s3, "run1", WRITE_RESULT)
    sm.create_processing_job(**request("forecast-run1", input_uri, params_uri, output_uri))
    assert sm.describe_processing_job(ProcessingJobName="forecast-run1")["ProcessingJobStatus"] == "InProgress"

    job = wait_for(sm, "forecast-run1")
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["ProcessingEndTime"] >= job["ProcessingStartTime"]
    assert job["Environment"] == {"ENV": "DEV", "NOTEBOOK_NAME": "DailyForecast"}
    result = json.loads(read_s3(s3, output_uri + "forecast.json"))
    assert result == {"horizon_days": 7, "dt": "2024-02-01", "ENV": "DEV", "lib": "forecast_lib"}
    executed = nbformat.reads(read_s3(s3, output_uri + "DailyForecast.ipynb").decode(), as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    lines = log_lines(aws["logs"], "forecast-run1")
    assert any("horizon is 7" in line for line in lines) and lines[-1].startswith("done: ")
    streams = aws["logs"].describe_log_streams(logGroupName=LOG_GROUP)["logStreams"]
    assert [s["logStreamName"].split("/")[1][:7] for s in streams] == ["algo-1-"]
    assert [r[0] for r in fake_sagemaker.runs] == ["forecast-run1"]


def test_failing_cell_fails_the_job_with_the_error(aws, fake_sagemaker):
    s3, sm = aws["s3"], aws["sagemaker"]
    input_uri, params_uri, output_uri = stage(
        s3, "run2", "open(output_dir + '/partial.txt', 'w').write('x')", "raise ValueError('no data for ' + dt)"
    )
    sm.create_processing_job(**request("forecast-run2", input_uri, params_uri, output_uri))
    job = wait_for(sm, "forecast-run2")
    assert job["ProcessingJobStatus"] == "Failed"
    assert "DailyForecast.ipynb failed in cell" in job["FailureReason"]
    assert "ValueError: no data for 2024-02-01" in job["FailureReason"]
    assert read_s3(s3, output_uri + "partial.txt") == b"x"  # outputs uploaded: the partly executed notebook too
    assert b"ValueError" in read_s3(s3, output_uri + "DailyForecast.ipynb")


def test_missing_input_fails_the_job(aws, fake_sagemaker):
    sm = aws["sagemaker"]
    missing = f"s3://{BUCKET}/nothing/here/"
    sm.create_processing_job(**request("forecast-empty", missing, missing + "p.json", f"s3://{BUCKET}/out/"))
    job = wait_for(sm, "forecast-empty")
    assert job["ProcessingJobStatus"] == "Failed" and "No S3 objects found" in job["FailureReason"]


def test_job_names_are_unique(aws, fake_sagemaker):
    input_uri, params_uri, output_uri = stage(aws["s3"], "run5", "pass")
    aws["sagemaker"].create_processing_job(**request("forecast-twice", input_uri, params_uri, output_uri))
    with pytest.raises(ClientError, match="must be unique"):
        aws["sagemaker"].create_processing_job(**request("forecast-twice", input_uri, params_uri, output_uri))


def test_stop_kills_the_container(aws, fake_sagemaker):
    s3, sm = aws["s3"], aws["sagemaker"]
    input_uri, params_uri, output_uri = stage(s3, "run3", "print('sleeping', flush=True)\nimport time\ntime.sleep(60)")
    sm.create_processing_job(**request("forecast-run3", input_uri, params_uri, output_uri))
    deadline = time.monotonic() + 30
    while not any("sleeping" in line for line in log_lines(aws["logs"], "forecast-run3")):
        assert time.monotonic() < deadline, "the notebook never started"
        time.sleep(0.1)

    sm.stop_processing_job(ProcessingJobName="forecast-run3")
    assert sm.describe_processing_job(ProcessingJobName="forecast-run3")["ProcessingJobStatus"] in (
        "Stopping",
        "Stopped",
    )
    assert wait_for(sm, "forecast-run3", timeout=10)["ProcessingJobStatus"] == "Stopped"
    proc = fake_sagemaker.jobs["forecast-run3"].proc
    assert proc.poll() is not None
    with pytest.raises(ProcessLookupError):  # the kernel went with the entrypoint's process group
        os.killpg(proc.pid, 0)
    assert "Contents" not in s3.list_objects_v2(
        Bucket=BUCKET, Prefix="sagemaker-models-dev/Forecast/DailyForecast/output/"
    )


def test_two_jobs_run_at_once(aws, fake_sagemaker):
    barrier = threading.Barrier(2, timeout=20)  # neither container starts until both are running
    fake_sagemaker.before_run = lambda name: barrier.wait()
    s3, sm = aws["s3"], aws["sagemaker"]
    for run in ("a", "b"):
        input_uri, params_uri, output_uri = stage(s3, run, WRITE_RESULT)
        sm.create_processing_job(**request(f"forecast-{run}", input_uri, params_uri, output_uri))
    assert [wait_for(sm, f"forecast-{run}")["ProcessingJobStatus"] for run in ("a", "b")] == ["Completed"] * 2
    assert fake_sagemaker.max_in_flight == 2
    (_, start_a, end_a), (_, start_b, end_b) = sorted(fake_sagemaker.runs)
    assert max(start_a, start_b) < min(end_a, end_b)


def codebuild_project(codebuild: Any, name: str = "ml-image-builds") -> None:
    codebuild.create_project(
        name=name,
        source={"type": "S3", "location": f"{BUCKET}/context.zip"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
            "environmentVariables": [{"name": "IMAGE_REPO", "value": REPO_URI, "type": "PLAINTEXT"}],
        },
        serviceRole="arn:aws:iam::123456789012:role/codebuild",
    )


def tags(ecr: Any, repo: str = "ml-notebooks") -> list[str]:
    return sorted(
        t for image in ecr.describe_images(repositoryName=repo)["imageDetails"] for t in image.get("imageTags", [])
    )


def test_build_pushes_the_image_tag(aws, fake_codebuild):
    ecr, codebuild = aws["ecr"], aws["codebuild"]
    ecr.create_repository(repositoryName="ml-notebooks")
    codebuild_project(codebuild)
    override = [{"name": "IMAGE_TAG", "value": "3f9a0c1d", "type": "PLAINTEXT"}]
    build_id = codebuild.start_build(projectName="ml-image-builds", environmentVariablesOverride=override)["build"][
        "id"
    ]
    assert tags(ecr) == []  # not before the build has completed

    (build,) = codebuild.batch_get_builds(ids=[build_id])["builds"]
    assert build["buildStatus"] == "SUCCEEDED"
    assert {v["name"]: v["value"] for v in build["environment"]["environmentVariables"]} == {
        "IMAGE_REPO": REPO_URI,
        "IMAGE_TAG": "3f9a0c1d",
    }
    assert tags(ecr) == ["3f9a0c1d"]
    assert [(b.id, b.image) for b in fake_codebuild.builds] == [(build_id, f"{REPO_URI}:3f9a0c1d")]

    override = [{"name": "IMAGE_TAG", "value": "77aa", "type": "PLAINTEXT"}]
    second = codebuild.start_build(projectName="ml-image-builds", environmentVariablesOverride=override)["build"]["id"]
    codebuild.batch_get_builds(ids=[second])
    codebuild.batch_get_builds(ids=[build_id, second])  # pushed once each
    assert tags(ecr) == ["3f9a0c1d", "77aa"] and len(fake_codebuild.builds) == 2


def test_build_without_repository_fails(aws, fake_codebuild):
    codebuild = aws["codebuild"]
    codebuild_project(codebuild)
    override = [{"name": "IMAGE_TAG", "value": "t1", "type": "PLAINTEXT"}]
    build_id = codebuild.start_build(projectName="ml-image-builds", environmentVariablesOverride=override)["build"][
        "id"
    ]
    for _ in range(2):  # moto would mark it SUCCEEDED at each call
        assert codebuild.batch_get_builds(ids=[build_id])["builds"][0]["buildStatus"] == "FAILED"
    assert "does not exist" in fake_codebuild.builds[0].reason
