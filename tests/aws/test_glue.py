"""AWS Glue backend over HTTP against the moto server: the job definition sent, incremental
reruns, definition changes, run arguments, a failed run's message, attach to a running run."""

import io
import json
import time
import urllib.request
import zipfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from dagster import AssetExecutionContext, MaterializeResult, asset, build_asset_context, materialize
from moto.backends import get_backend
from moto.glue.models import FakeJobRun

from ml_pipelines.aws.glue import AwsGlueBackend, run_arguments
from ml_pipelines.aws.storage import S3Storage
from ml_pipelines.plan.model import GluePlan, RunIdentity, TimeWindow
from ml_pipelines.steps import StepFailed, StepOutcome, StepPreconditionFailed

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
BUCKET = "ml-dev-bucket"
BASE = f"s3://{BUCKET}/glue-models-dev/movies/movies_job/"
ROLE = "arn:aws:iam::123456789012:role/glue-role"
WINDOW = TimeWindow(start=datetime(2024, 1, 1, tzinfo=UTC), end=datetime(2024, 1, 2, tzinfo=UTC))


def make_plan(folder: Path, **changes: Any) -> GluePlan:
    """A model Glue script with lib/ (a module and a package), a py file, a jar, requirements."""
    files = {
        "movies_job.py": "print('job')\n",
        "lib/movie_utils.py": "X = 1\n",
        "lib/dedupe/__init__.py": "Y = 2\n",
        "helpers.py": "Z = 3\n",
        "jars/extra.jar": "jar bytes",
        "requirements.txt": "# pinned\npandas==2.0.3\n\n--index-url https://example.invalid\npyarrow  # any\n",
    }
    for rel, text in files.items():
        path = folder / rel
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    values: dict[str, Any] = {
        "run": RunIdentity(pipeline_id="movies", step_name="glue_job_processing_script_1", env="DEV", window=WINDOW),
        "job_name": "movies-glue_job_processing_script_1",
        "script": folder / "movies_job.py",
        "script_dir": folder,
        "lib_dir": folder / "lib",
        "jars": (folder / "jars/extra.jar",),
        "py_files": (folder / "helpers.py",),
        "requirements_file": folder / "requirements.txt",
        "arguments": {"ds": "2024-01-01", "output_path": f"s3://{BUCKET}/out/"},
        "worker_type": "G.1X",
        "number_of_workers": 2,
        "base_uri": BASE,
        "input_uri": BASE + "input/",
        "lib_uri": BASE + "lib/",
        "jar_uri": BASE + "jar/",
        "temp_uri": BASE + "temp/",
    }
    values.update(changes)
    return GluePlan(**values)


@pytest.fixture
def calls(aws_hooks: Any) -> dict[str, Any]:
    """Every Glue and S3 call the backend's clients send: counts by operation, Glue request bodies."""
    seen: dict[str, Any] = {"count": Counter(), "params": {}}

    def record(model: Any, params: dict[str, Any], **kwargs: Any) -> None:
        seen["count"][model.name] += 1
        if model.service_model.service_name == "glue":  # the JSON request body as sent
            seen["params"].setdefault(model.name, []).append(json.loads(params["body"]))

    aws_hooks("before-call.*.*", record)
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    return seen


def backend(**changes: Any) -> AwsGlueBackend:
    values: dict[str, Any] = {"storage": S3Storage(), "role_arn": ROLE, "poll_initial_s": 0.01, "poll_max_s": 0.05}
    values.update(changes)
    return AwsGlueBackend(**values)


def run_step(glue: AwsGlueBackend, plan: GluePlan) -> StepOutcome:
    with build_asset_context() as context:
        return glue.run(context, plan)


def moto_job(name: str) -> Any:
    return get_backend("glue")[ACCOUNT][REGION].jobs[name]


def test_first_run_creates_the_job_and_runs_it_with_the_plan_arguments(calls: dict[str, Any], tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    glue = backend()

    @asset
    def glue_step(context: AssetExecutionContext) -> MaterializeResult:
        return MaterializeResult(metadata=glue.run(context, plan).metadata)

    result = materialize([glue_step])
    assert result.success

    (create,) = calls["params"]["CreateJob"]
    lib = BASE + "lib/"
    assert create["Name"] == plan.job_name
    assert create["Role"] == ROLE
    assert create["Command"]["ScriptLocation"] == BASE + "input/movies_job.py"
    assert create["GlueVersion"] == "4.0"
    assert (create["WorkerType"], create["NumberOfWorkers"]) == ("G.1X", 2)
    assert create["DefaultArguments"] == {
        "--job-language": "python",
        "--TempDir": BASE + "temp/",
        "--extra-py-files": f"{lib}movie_utils.py,{lib}dedupe.zip,{lib}helpers.py",
        "--extra-jars": BASE + "jar/extra.jar",
        "--additional-python-modules": "pandas==2.0.3,pyarrow",
    }
    (start,) = calls["params"]["StartJobRun"]
    assert start["Arguments"] == {"--ds": "2024-01-01", "--output_path": f"s3://{BUCKET}/out/"}

    s3 = boto3.client("s3")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    prefix = "glue-models-dev/movies/movies_job/"
    assert keys == [
        prefix + name
        for name in (
            "input/movies_job.py",
            "jar/extra.jar",
            "lib/dedupe.zip",
            "lib/dedupe/__init__.py",
            "lib/helpers.py",
            "lib/movie_utils.py",
        )
    ]
    archive = s3.get_object(Bucket=BUCKET, Key=prefix + "lib/dedupe.zip")["Body"].read()
    assert zipfile.ZipFile(io.BytesIO(archive)).namelist() == ["dedupe/__init__.py"]

    metadata = result.asset_materializations_for_node("glue_step")[0].metadata
    run_id = metadata["run_id"].value
    assert run_id == moto_job(plan.job_name).job_runs[0].job_run_id
    assert metadata["job_name"].value == plan.job_name
    assert metadata["job_definition"].value == "created"
    assert metadata["arguments"].value == start["Arguments"]
    assert metadata["console_url"].value.endswith(f"#/job/{plan.job_name}/run/{run_id}")
    assert metadata["duration_s"].value >= 0


def test_unchanged_rerun_does_not_recreate_the_job_or_upload(calls: dict[str, Any], tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    glue = backend()
    run_step(glue, plan)
    first = calls["count"].copy()
    assert first["PutObject"] == 6
    calls["count"].clear()

    outcome = run_step(glue, plan)

    count = calls["count"]
    assert count["PutObject"] == count["CreateMultipartUpload"] == 0
    assert count["CreateJob"] == count["UpdateJob"] == count["DeleteJob"] == 0
    assert count["GetJob"] == count["StartJobRun"] == 1
    assert outcome.metadata["job_definition"] == "unchanged"
    assert len(moto_job(plan.job_name).job_runs) == 2


def test_changed_definition_is_applied(calls: dict[str, Any], tmp_path: Path) -> None:
    glue = backend()
    run_step(glue, make_plan(tmp_path))
    calls["count"].clear()
    (tmp_path / "requirements.txt").write_text("pandas==2.2.0\n")
    (tmp_path / "lib/movie_utils.py").write_text("X = 2\n")

    outcome = run_step(glue, make_plan(tmp_path, number_of_workers=5, worker_type="G.2X"))

    # moto has no update_job: the backend falls back to delete + create
    assert outcome.metadata["job_definition"] == "replaced"
    assert calls["count"]["PutObject"] == 1  # the changed lib file only
    job = boto3.client("glue").get_job(JobName="movies-glue_job_processing_script_1")["Job"]
    assert (job["WorkerType"], job["NumberOfWorkers"]) == ("G.2X", 5)
    assert job["DefaultArguments"]["--additional-python-modules"] == "pandas==2.2.0"
    assert job["Command"]["ScriptLocation"] == BASE + "input/movies_job.py"


def test_failed_run_fails_the_step_with_glue_error_message(
    calls: dict[str, Any], aws_hooks: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = make_plan(tmp_path)
    as_dict = FakeJobRun.as_dict

    def with_error(self: FakeJobRun) -> dict[str, Any]:  # moto keeps no ErrorMessage: serve one
        return {**as_dict(self), **({"ErrorMessage": self.error_message} if hasattr(self, "error_message") else {})}

    monkeypatch.setattr(FakeJobRun, "as_dict", with_error)

    def fail_run(parsed: dict[str, Any], **kwargs: Any) -> None:
        run = moto_job(plan.job_name).job_runs[-1]
        run.status = "FAILED"
        run.error_message = "AnalysisException: Path does not exist: s3://ml-dev-bucket/in/"

    glue = backend()
    aws_hooks("after-call.glue.StartJobRun", fail_run)

    with pytest.raises(StepFailed) as failure:
        run_step(glue, plan)

    assert not isinstance(failure.value, StepPreconditionFailed)
    assert "ended FAILED" in str(failure.value)
    assert "AnalysisException: Path does not exist: s3://ml-dev-bucket/in/" in str(failure.value)


@pytest.fixture
def manual_runs(aws_env: str):
    """Glue runs keep the state a test gives them (moto otherwise ends them at once)."""

    def post(path: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(f"{aws_env}/moto-api/state-manager/{path}", data=json.dumps(body).encode())
        urllib.request.urlopen(request, timeout=10)

    post("set-transition", {"model_name": "glue::job_run", "transition": {"progression": "manual", "times": 10**6}})
    yield
    post("unset-transition", {"model_name": "glue::job_run"})


def test_attaches_to_a_running_run_with_the_same_arguments(
    calls: dict[str, Any], aws_hooks: Any, manual_runs: None, tmp_path: Path
) -> None:
    plan = make_plan(tmp_path)
    client = boto3.client("glue")
    client.create_job(
        Name=plan.job_name,
        Role=ROLE,
        Command={"Name": "glueetl", "ScriptLocation": "s3://elsewhere/old.py"},
        ExecutionProperty={"MaxConcurrentRuns": 5},
    )
    other = client.start_job_run(JobName=plan.job_name, Arguments={**run_arguments(plan), "--ds": "2023-12-31"})
    same = client.start_job_run(JobName=plan.job_name, Arguments=run_arguments(plan))
    for run in moto_job(plan.job_name).job_runs:
        run.status = "RUNNING"

    def finish(parsed: dict[str, Any], **kwargs: Any) -> None:  # the run ends after the first poll
        for run in moto_job(plan.job_name).job_runs:
            run.status = "SUCCEEDED"

    aws_hooks("after-call.glue.GetJobRun", finish)

    outcome = run_step(backend(), plan)

    assert outcome.metadata["run_id"] == same["JobRunId"] != other["JobRunId"]
    assert outcome.metadata["job_definition"] == "attached"
    assert calls["count"]["StartJobRun"] == calls["count"]["CreateJob"] == 0
    assert calls["count"]["GetJobRun"] == 2  # RUNNING, then SUCCEEDED


def test_missing_role_or_bucket_is_a_precondition(aws_env: str, tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    with pytest.raises(StepPreconditionFailed, match="ML_PIPELINES_GLUE_ROLE_ARN"):
        run_step(backend(role_arn=""), plan)
    with pytest.raises(StepPreconditionFailed, match="does not exist"):  # no bucket created
        run_step(backend(), plan)


def test_missing_region_is_a_precondition(
    calls: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(StepPreconditionFailed, match="no AWS region set"):
        run_step(backend(), make_plan(tmp_path))


def test_common_script_files_go_to_the_common_input_folders(calls: dict[str, Any], tmp_path: Path) -> None:
    base = f"s3://{BUCKET}/glue-models-dev/common/movies_job/"
    common = {
        name: f"{base}input/{name}/" for name in ("common_lib", "common_jars", "pub_dependencies", "common_py_files")
    }
    plan = make_plan(
        tmp_path, base_uri=base, input_uri=base + "input/", lib_uri=base + "lib/", jar_uri=base + "jar/",
        temp_uri=base + "temp/", common_input_uris=common,
    )  # fmt: skip
    run_step(backend(), plan)

    keys = sorted(o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"])
    prefix = "glue-models-dev/common/movies_job/input/"
    assert keys == [
        prefix + name
        for name in (
            "common_jars/extra.jar",
            "common_lib/dedupe.zip",
            "common_lib/dedupe/__init__.py",
            "common_lib/movie_utils.py",
            "common_py_files/helpers.py",
            "movies_job.py",
        )
    ]
    (create,) = calls["params"]["CreateJob"]
    arguments = create["DefaultArguments"]
    assert arguments["--extra-jars"] == f"{prefix_uri(prefix)}common_jars/extra.jar"
    assert arguments["--extra-py-files"].split(",") == [
        f"{prefix_uri(prefix)}common_lib/movie_utils.py",
        f"{prefix_uri(prefix)}common_lib/dedupe.zip",
        f"{prefix_uri(prefix)}common_py_files/helpers.py",
    ]


def prefix_uri(key: str) -> str:
    return f"s3://{BUCKET}/{key}"


def test_log_lines_reach_the_dagster_log_and_a_failure(
    calls: dict[str, Any], aws_hooks: Any, manual_runs: None, tmp_path: Path
) -> None:
    """Glue writes the driver's lines to /aws-glue/jobs/output and /error, streams named after the run."""
    plan = make_plan(tmp_path)
    logs = boto3.client("logs")
    for group in ("/aws-glue/jobs/output", "/aws-glue/jobs/error"):
        logs.create_log_group(logGroupName=group)
    polls: list[int] = []

    def write_then_fail(**kwargs: Any) -> None:
        run = moto_job(plan.job_name).job_runs[-1]
        polls.append(1)
        now = int(time.time() * 1000)
        if len(polls) == 1:
            run.status = "RUNNING"
            logs.create_log_stream(logGroupName="/aws-glue/jobs/output", logStreamName=run.job_run_id)
            logs.create_log_stream(logGroupName="/aws-glue/jobs/error", logStreamName=run.job_run_id)
            events = [{"timestamp": now, "message": "reading s3://ml-dev-bucket/in/"}]
            logs.put_log_events(logGroupName="/aws-glue/jobs/output", logStreamName=run.job_run_id, logEvents=events)
        elif len(polls) == 2:
            events = [{"timestamp": now, "message": "Traceback: AnalysisException: Path does not exist"}]
            logs.put_log_events(logGroupName="/aws-glue/jobs/error", logStreamName=run.job_run_id, logEvents=events)
            run.status = "FAILED"

    aws_hooks("before-call.glue.GetJobRun", write_then_fail)
    lines: list[str] = []
    with build_asset_context() as context:
        context.log.info = lines.append  # type: ignore[method-assign]
        context.log.warning = lines.append  # type: ignore[method-assign]
        with pytest.raises(StepFailed) as failure:
            AwsGlueBackend(storage=S3Storage(), role_arn=ROLE, poll_initial_s=0.01, poll_max_s=0.02).run(context, plan)

    assert f"[{plan.job_name}] reading s3://ml-dev-bucket/in/" in lines
    assert f"[{plan.job_name}] Traceback: AnalysisException: Path does not exist" in lines
    assert "Last log lines:\nTraceback: AnalysisException: Path does not exist" in str(failure.value)
