"""SageMakerNotebookBackend over real HTTP against the moto server (S3, SageMaker, CloudWatch Logs).

moto completes a processing job at once and keeps neither ProcessingResources, Environment
nor Tags, so requests are captured with botocore hooks; failures, running jobs and log lines
are put in moto's backend (in this process) by the tests.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from dagster import DagsterExecutionInterruptedError, build_asset_context
from moto.backends import get_backend
from moto.core import DEFAULT_ACCOUNT_ID

from ml_pipelines.aws.notebook import LOG_GROUP, SageMakerNotebookBackend, job_name
from ml_pipelines.aws.storage import S3Storage
from ml_pipelines.config.parameters import split_s3_uri
from ml_pipelines.plan.model import ContainerImagePlan, NotebookPlan, RunIdentity, TimeWindow
from ml_pipelines.steps import StepFailed

BUCKET = "forecast-dev"
ROLE = "arn:aws:iam::123456789012:role/sagemaker-processing"
REPO = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ml-pipelines"
MODEL = Path(__file__).resolve().parents[1] / "fixtures" / "project_ok" / "Sagemaker_Models" / "Forecast"
BASE = f"s3://{BUCKET}/sagemaker-models-dev/Forecast/DailyForecast/"
WINDOW = TimeWindow(
    start=datetime(2024, 1, 31, 6, 30, tzinfo=timezone.utc), end=datetime(2024, 2, 1, 6, 30, tzinfo=timezone.utc)
)
UTC = timezone.utc


def make_plan(pipeline_id: str = "demo_forecast_Daily", step: str = "sagemaker_notebook_job_processing_script"):
    run = RunIdentity(pipeline_id=pipeline_id, step_name=step, env="DEV", window=WINDOW)
    image = ContainerImagePlan(
        run=run,
        kernel="python3",
        model_dir=MODEL,
        requirements_file=MODEL / "requirements.txt",
        dockerfile=None,
        content_hash="abc123def456",
        image_name=f"{pipeline_id}-python3",
    )
    return NotebookPlan(
        run=run,
        notebook=MODEL / "DailyForecast.ipynb",
        model_dir=MODEL,
        lib_dir=MODEL / "lib",
        parameter_file=MODEL / "test.json",
        image=image,
        parameters={"horizon_days": 7, "dt": "2024-02-01", "ENV": "DEV"},
        input_uri=BASE + "input/",
        output_uri=BASE + "output/",
        instance_type="ml.m5.xlarge",
        instance_count=2,
        volume_size_gb=30,
    )


def sagemaker_job(name: str):
    return get_backend("sagemaker")[DEFAULT_ACCOUNT_ID]["us-east-1"].processing_jobs[name]


@pytest.fixture
def s3(aws_env):
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch):
    """Every request the backend's SageMaker, Logs and S3 clients send: (operation, params),
    in order; `calls.hooks` maps an event name to extra handlers the test adds."""

    class Calls(list):
        hooks: dict[str, list]

        def named(self, name):
            return [params for op, params in self if op == name]

    seen = Calls()
    seen.hooks = {}

    def record(model, params, **_):
        seen.append((model.name, params))

    def instrument(client):
        client.meta.events.register("before-parameter-build.*", record)
        for event, handlers in seen.hooks.items():
            for handler in handlers:
                client.meta.events.register(event, handler)
        return client

    make_client, make_s3 = SageMakerNotebookBackend._client, S3Storage.client
    monkeypatch.setattr(
        SageMakerNotebookBackend, "_client", lambda self, service: instrument(make_client(self, service))
    )
    monkeypatch.setattr(S3Storage, "client", lambda self: instrument(make_s3(self)))
    return seen


def backend(**kw) -> SageMakerNotebookBackend:
    return SageMakerNotebookBackend(
        role_arn=ROLE, ecr_repository=REPO, storage=S3Storage(), poll_initial_s=0.01, poll_max_s=0.05, **kw
    )


def uploads(calls) -> list[str]:
    return [p["Key"] for op, p in calls if op in ("PutObject", "CreateMultipartUpload")]


def test_create_request_and_staging(s3, calls):
    plan = make_plan()
    context = build_asset_context()
    outcome = backend().run(context, plan)

    name = job_name(plan, "EPHEMERAL", 0)
    (request,) = calls.named("CreateProcessingJob")
    run_output = BASE + "output/runs/EPHEMERAL/"
    assert request["ProcessingJobName"] == name
    assert request["RoleArn"] == ROLE
    app = request["AppSpecification"]
    assert app["ImageUri"] == f"{REPO}:abc123def456"
    assert app["ContainerEntrypoint"] == ["python3", "/opt/ml/code/papermill_entrypoint.py"]
    parameters_key = next(k for k in object_keys(s3) if "/DailyForecast/parameters/" in k)
    parameters_name = parameters_key.rsplit("/", 1)[1]
    assert app["ContainerArguments"] == [
        "--notebook", "DailyForecast", "--env", "DEV", "--kernel", "python3",
        "--parameters", f"/opt/ml/processing/parameters/{parameters_name}",
    ]  # fmt: skip
    assert request["ProcessingResources"]["ClusterConfig"] == {
        "InstanceCount": 2,
        "InstanceType": "ml.m5.xlarge",
        "VolumeSizeInGB": 30,
    }
    inputs = {i["InputName"]: i["S3Input"] for i in request["ProcessingInputs"]}
    assert inputs["input"]["S3Uri"] == BASE + "input/" and inputs["input"]["LocalPath"] == "/opt/ml/processing/input"
    assert inputs["parameters"]["S3Uri"] == f"s3://{BUCKET}/{parameters_key}"
    assert inputs["parameters"]["LocalPath"] == "/opt/ml/processing/parameters"
    (out,) = request["ProcessingOutputConfig"]["Outputs"]
    assert out["S3Output"]["S3Uri"] == run_output and out["S3Output"]["LocalPath"] == "/opt/ml/processing/output"

    prefix = "sagemaker-models-dev/Forecast/DailyForecast/"
    assert object_keys(s3) == sorted(
        [prefix + "input/" + k for k in ("DailyForecast.ipynb", "test.json", "lib/helpers.py")] + [parameters_key]
    )
    assert parameters_key.startswith(prefix + "parameters/") and parameters_name.endswith(".json")
    params = json.loads(s3.get_object(Bucket=BUCKET, Key=parameters_key)["Body"].read())
    assert params == {"horizon_days": 7, "dt": "2024-02-01", "ENV": "DEV"}

    md = outcome.metadata
    assert md["job_arn"].endswith(f"processing-job/{name}")
    assert name in md["console_url"].url and "us-east-1" in md["console_url"].url
    assert md["output_uri"] == BASE + "output/" and md["run_output_uri"] == run_output
    assert md["duration_s"] >= 0 and md["instance_hours"] >= 0


def object_keys(s3) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_job_name_is_deterministic_and_short():
    plan = make_plan()
    name = job_name(plan, "0123456789abcdef", 1)
    assert name == job_name(plan, "0123456789abcdef", 1)
    assert name != job_name(plan, "0123456789abcdef", 2)
    assert name != job_name(plan, "fedcba9876543210", 1)
    other_day = NotebookPlan(**{**plan.__dict__, "run": RunIdentity(**{**plan.run.__dict__, "window": TimeWindow(
        start=datetime(2024, 2, 1, 6, 30, tzinfo=UTC), end=datetime(2024, 2, 2, 6, 30, tzinfo=UTC))})})  # fmt: skip
    assert job_name(other_day, "0123456789abcdef", 1) != name
    for candidate in (name, job_name(make_plan("p", "s"), "run", 0)):
        assert len(candidate) <= 63 and all(c.isalnum() or c == "-" for c in candidate)
    assert job_name(make_plan("p", "s"), "runid-123456", 0) == "p-s-202401310630-runid-12-r0"
    # long names are cut and end with a hash of the whole name: two long names differing at the end differ
    long_a = job_name(make_plan("a" * 80, "step_one"), "run", 0)
    long_b = job_name(make_plan("a" * 80, "step_two"), "run", 0)
    assert len(long_a) == 63 and len(long_b) == 63 and long_a != long_b


def test_unchanged_files_are_not_uploaded_again(s3, calls):
    """A worker that died after staging but before CreateProcessingJob, then a new run of the
    same partition: neither uploads anything again."""
    plan = make_plan()
    attempts = []

    def die_once(**_):
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("worker died")

    calls.hooks["before-call.sagemaker.CreateProcessingJob"] = [die_once]
    with pytest.raises(RuntimeError, match="worker died"):
        backend().run(build_asset_context(), plan)
    first = uploads(calls)
    assert len(first) == 4
    calls.clear()
    backend().run(build_asset_context(), plan)
    assert uploads(calls) == []
    assert len(calls.named("CreateProcessingJob")) == 1
    calls.clear()
    another_run = SimpleNamespace(run_id="0f1e2d3c-another-run", retry_number=0, log=build_asset_context().log)
    backend().run(another_run, plan)  # another Dagster run: another job, the same inputs
    assert uploads(calls) == []
    assert len(calls.named("CreateProcessingJob")) == 1


def test_failed_job_fails_the_step_with_reason_and_last_log_lines(s3, calls):
    plan = make_plan()
    name = job_name(plan, "EPHEMERAL", 0)
    logs = boto3.client("logs")

    def fail_job(**_):
        job = sagemaker_job(name)
        job.processing_job_status = "Failed"
        job.failure_reason = "AlgorithmError: DailyForecast.ipynb failed in cell In [3]: KeyError: 'dt'"
        logs.create_log_group(logGroupName=LOG_GROUP)
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=f"{name}/algo-1-1700000000")
        now = int(time.time() * 1000)
        logs.put_log_events(
            logGroupName=LOG_GROUP,
            logStreamName=f"{name}/algo-1-1700000000",
            logEvents=[
                {"timestamp": now, "message": "papermill DailyForecast.ipynb"},
                {"timestamp": now + 1, "message": "KeyError: 'dt'"},
            ],
        )

    calls.hooks["after-call.sagemaker.CreateProcessingJob"] = [fail_job]
    with pytest.raises(StepFailed) as info:
        backend().run(build_asset_context(), plan)
    message = str(info.value)
    assert f"Processing job {name} Failed: AlgorithmError: DailyForecast.ipynb failed in cell In [3]" in message
    assert message.endswith("Last log lines:\npapermill DailyForecast.ipynb\nKeyError: 'dt'")
    # a failed run publishes nothing to the output location
    assert calls.named("CopyObject") == []


def test_log_lines_are_forwarded_while_the_job_runs(s3, calls, monkeypatch):
    plan = make_plan()
    name = job_name(plan, "EPHEMERAL", 0)
    logs = boto3.client("logs")
    stream = f"{name}/algo-1-1700000000"
    describes = []

    def start_running(**_):
        sagemaker_job(name).processing_job_status = "InProgress"
        logs.create_log_group(logGroupName=LOG_GROUP)
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)

    def write_a_line_then_complete(**_):
        if name not in get_backend("sagemaker")[DEFAULT_ACCOUNT_ID]["us-east-1"].processing_jobs:
            return  # the check for an existing job, before it is created
        describes.append(1)
        now = int(time.time() * 1000)
        if len(describes) <= 3:
            logs.put_log_events(
                logGroupName=LOG_GROUP,
                logStreamName=stream,
                logEvents=[{"timestamp": now, "message": f"cell {len(describes)}"}],
            )
        else:
            sagemaker_job(name).processing_job_status = "Completed"

    calls.hooks["after-call.sagemaker.CreateProcessingJob"] = [start_running]
    calls.hooks["before-call.sagemaker.DescribeProcessingJob"] = [write_a_line_then_complete]
    context = build_asset_context()
    forwarded: list[str] = []
    info = context.log.info
    monkeypatch.setattr(context.log, "info", lambda msg, *a, **k: (forwarded.append(msg), info(msg, *a, **k)))
    backend().run(context, plan)
    lines = [line for line in forwarded if line.startswith(f"[{name}]")]
    assert lines == [f"[{name}] cell 1", f"[{name}] cell 2", f"[{name}] cell 3"]


def test_completed_job_publishes_its_outputs(s3, calls):
    plan = make_plan()
    run_prefix = "sagemaker-models-dev/Forecast/DailyForecast/output/runs/EPHEMERAL/"

    def container_wrote_outputs(**_):
        s3.put_object(Bucket=BUCKET, Key=run_prefix + "DailyForecast.ipynb", Body=b"{}")
        s3.put_object(Bucket=BUCKET, Key=run_prefix + "preds/day.csv", Body=b"a,b\n")

    calls.hooks["after-call.sagemaker.CreateProcessingJob"] = [container_wrote_outputs]
    outcome = backend().run(build_asset_context(), plan)
    assert outcome.metadata["output_files"] == [BASE + "output/DailyForecast.ipynb", BASE + "output/preds/day.csv"]
    body = s3.get_object(Bucket=BUCKET, Key="sagemaker-models-dev/Forecast/DailyForecast/output/preds/day.csv")
    assert body["Body"].read() == b"a,b\n"


def test_attaches_to_a_running_job_and_does_not_restart_a_completed_one(s3, calls):
    """A restarted worker: the job of this run, step, partition and attempt already exists."""
    plan = make_plan()
    name = job_name(plan, "EPHEMERAL", 0)
    sm = boto3.client("sagemaker")
    sm.create_processing_job(
        **backend().request(plan, name, BASE + "parameters/0123abcd.json", BASE + "output/runs/EPHEMERAL/")
    )
    sagemaker_job(name).processing_job_status = "InProgress"
    polls = []

    def complete_on_third_poll(**_):
        polls.append(1)
        if len(polls) == 3:
            sagemaker_job(name).processing_job_status = "Completed"

    calls.hooks["before-call.sagemaker.DescribeProcessingJob"] = [complete_on_third_poll]
    outcome = backend().run(build_asset_context(), plan)
    assert calls.named("CreateProcessingJob") == [] and uploads(calls) == []
    assert len(polls) >= 3 and outcome.metadata["job_name"] == name

    calls.clear()
    backend().run(build_asset_context(), plan)  # Completed: not started again
    assert calls.named("CreateProcessingJob") == [] and uploads(calls) == []


def test_interrupt_stops_the_job(s3, calls):
    plan = make_plan()
    name = job_name(plan, "EPHEMERAL", 0)

    def keep_running(**_):
        sagemaker_job(name).processing_job_status = "InProgress"

    def interrupt(**_):
        if name in get_backend("sagemaker")[DEFAULT_ACCOUNT_ID]["us-east-1"].processing_jobs:
            raise DagsterExecutionInterruptedError()

    calls.hooks["after-call.sagemaker.CreateProcessingJob"] = [keep_running]
    calls.hooks["after-call.sagemaker.DescribeProcessingJob"] = [interrupt]
    with pytest.raises(DagsterExecutionInterruptedError):
        backend().run(build_asset_context(), plan)
    assert calls.named("StopProcessingJob") == [{"ProcessingJobName": name}]
    assert sagemaker_job(name).processing_job_status == "Stopped"


def test_plan_from_the_fixture_project_runs(s3, calls):
    """The DEV plan the planner makes for the fixture project's notebook step."""
    from ml_pipelines.config.loader import load_project
    from ml_pipelines.config.variables import load_variables
    from ml_pipelines.plan.resolve import plan_step

    project = load_project(MODEL.parents[1], "DEV")
    pipeline = project.pipeline("demo_forecast_Daily")
    variables = load_variables(project.paths.model_configs, "DEV", environ={})
    plan = plan_step(
        pipeline, "sagemaker_notebook_job_processing_script", "DEV", WINDOW,
        paths=project.paths, variables=variables, storage_root=None,
    )  # fmt: skip
    assert isinstance(plan, NotebookPlan)
    backend().run(build_asset_context(), plan)
    (request,) = calls.named("CreateProcessingJob")
    assert request["ProcessingInputs"][0]["S3Input"]["S3Uri"] == plan.input_uri
    assert request["ProcessingResources"]["ClusterConfig"]["InstanceType"] == "ml.m5.xlarge"
    assert request["AppSpecification"]["ImageUri"] == f"{REPO}:{plan.image.content_hash}"
    parameters_uri = request["ProcessingInputs"][1]["S3Input"]["S3Uri"]
    staged = s3.get_object(Bucket=BUCKET, Key=split_s3_uri(parameters_uri)[1])
    assert json.loads(staged["Body"].read())["dt"] == "2024-02-01"


def test_repository_given_by_name_is_looked_up_in_ecr(s3, calls):
    """ML_PIPELINES_ECR_REPOSITORY may be the name: the image URI is ECR's URI of it."""
    uri = boto3.client("ecr").create_repository(repositoryName="ml-pipelines")["repository"]["repositoryUri"]
    plan = make_plan()
    notebooks = SageMakerNotebookBackend(
        role_arn=ROLE, ecr_repository="ml-pipelines", storage=S3Storage(), poll_initial_s=0.01, poll_max_s=0.05
    )
    notebooks.run(build_asset_context(), plan)
    (request,) = calls.named("CreateProcessingJob")
    assert request["AppSpecification"]["ImageUri"] == f"{uri}:{plan.image.content_hash}"
