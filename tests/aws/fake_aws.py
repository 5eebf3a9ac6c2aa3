"""Make the in-process moto server behave like the real services, for end-to-end tests.

moto completes a processing job the moment it is created and runs nothing, and its CodeBuild
builds push nothing. The moto server of `conftest.py` runs in a thread of the test process, so
its request handlers can be patched here:

- `sagemaker_runs_containers(endpoint_url)`: a processing job is `InProgress` when created and
  is then executed in a background thread like SageMaker would run the container: inputs
  downloaded from S3 into a temp folder standing for /opt/ml, the container's entrypoint run
  as a local process (`python3 /opt/ml/code/papermill_entrypoint.py` → this interpreter on a
  copy of containers/papermill_entrypoint.py), its output lines written to CloudWatch Logs,
  the outputs uploaded, and the job `Completed`, `Failed` or (after StopProcessingJob) `Stopped`.
- `codebuild_pushes_images()`: a build started with IMAGE_REPO/IMAGE_TAG has put that image in
  moto's ECR once it has completed (at the first BatchGetBuilds that returns it).

Both patch moto's *response* classes (SageMakerResponse, CodeBuildResponse), because the backends
are not given Environment or environmentVariablesOverride, and because `/moto-api/reset` replaces
the backends' state (class-level patches survive it). Checked against moto 5.2.5.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import fakesnow
from moto.backends import get_backend
from moto.codebuild.responses import CodeBuildResponse
from moto.core.responses import EmptyResult
from moto.core.utils import utcnow
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.responses import SageMakerResponse

# fakesnow's server starter, taken before anything imports the submodule `fakesnow.server`,
# which replaces the package's `server` function by that module.
START_FAKESNOW = fakesnow.server
REPO_ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO_ROOT / "containers" / "papermill_entrypoint.py"
LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
OPT_ML = "/opt/ml/"
# the image's ENTRYPOINT (containers/python3/Dockerfile), used when the request gives none
IMAGE_ENTRYPOINT = ["python", "/opt/ml/code/papermill_entrypoint.py"]


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


@dataclass
class FakeJob:
    name: str
    model: Any  # moto's FakeProcessingJob: its attributes are what DescribeProcessingJob returns
    environment: dict[str, str]
    root: Path  # stands for /opt/ml
    stop: threading.Event = field(default_factory=threading.Event)
    proc: subprocess.Popen | None = None
    thread: threading.Thread | None = None
    lines: list[str] = field(default_factory=list)


class FakeSageMaker:
    """What `sagemaker_runs_containers` yields: the jobs it ran and when.

    `runs` holds (job name, start, end) in `time.monotonic()` seconds, from the container's
    start (after the inputs are downloaded) to its exit; `max_in_flight` is the largest number
    of containers running at once. `before_run(job_name)` is called in the job's thread when
    its container counts as running (e.g. a `threading.Barrier` to prove two run at once);
    `delay_s` sleeps there (a stop cuts it short)."""

    def __init__(
        self,
        endpoint_url: str,
        *,
        region: str = "us-east-1",
        entrypoint: Path = ENTRYPOINT,
        delay_s: float = 0.0,
        before_run: Callable[[str], None] | None = None,
    ) -> None:
        self.endpoint_url, self.region, self.entrypoint = endpoint_url, region, entrypoint
        self.delay_s, self.before_run = delay_s, before_run
        self.jobs: dict[str, FakeJob] = {}
        self.runs: list[tuple[str, float, float]] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._tmp = Path(tempfile.mkdtemp(prefix="fake-sagemaker-"))

    # -- moto's handlers, patched --------------------------------------------------------------
    def _create(self, original: Callable, handler: SageMakerResponse) -> Any:
        name = handler._get_param("ProcessingJobName")
        backend = handler.sagemaker_backend
        if name in backend.processing_jobs:  # moto would overwrite it; SageMaker refuses
            raise ValidationError(
                "Job name must be unique within an AWS account and region, and a job with this name already exists "
                f"({backend.processing_jobs[name].arn})"
            )
        result = original(handler)
        model = backend.processing_jobs[name]
        # every attribute set now: describe iterates the model's __dict__ from another thread
        model.processing_job_status = "InProgress"
        model.processing_start_time = model.processing_end_time = None
        model.failure_reason = model.exit_message = None
        model.environment = handler._get_param("Environment") or {}
        model.processing_resources = handler._get_param("ProcessingResources")
        job = FakeJob(name, model, dict(model.environment), Path(tempfile.mkdtemp(prefix="opt_ml-", dir=self._tmp)))
        job.thread = threading.Thread(target=self._run, args=(job,), name=f"fake-sagemaker-{name}", daemon=True)
        self.jobs[name] = job
        job.thread.start()
        return result

    def _stop(self, original: Callable, handler: SageMakerResponse) -> Any:
        job = self.jobs.get(handler._get_param("ProcessingJobName"))
        if job is None:
            return original(handler)  # not ours: moto's answer (ValidationException when unknown)
        with self._lock:  # against the job's thread setting its final status
            if job.model.processing_job_status == "InProgress":
                job.model.processing_job_status = "Stopping"
                self._kill(job)
        return EmptyResult()

    # -- the job -------------------------------------------------------------------------------
    def _local(self, job: FakeJob, path: str) -> str:
        return str(job.root / path[len(OPT_ML) :]) if path.startswith(OPT_ML) else path

    def _clients(self) -> tuple[Any, Any]:
        session = boto3.session.Session(
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            aws_secret_access_key="testing",
            region_name=self.region,
        )
        return (session.client(s, endpoint_url=self.endpoint_url) for s in ("s3", "logs"))

    def _download(self, s3: Any, job: FakeJob) -> None:
        for item in job.model.processing_inputs or []:
            spec = item.get("S3Input")
            if not spec:
                continue
            if spec.get("S3DataType", "S3Prefix") != "S3Prefix":
                raise RuntimeError(f"fake SageMaker: S3DataType {spec['S3DataType']} not supported")
            uri, local = spec["S3Uri"], Path(self._local(job, spec["LocalPath"]))
            bucket, key = _split(uri)
            found = 0
            if key and not key.endswith("/"):  # an object key: LocalPath/<basename>
                with suppress(s3.exceptions.ClientError):
                    s3.head_object(Bucket=bucket, Key=key)
                    local.mkdir(parents=True, exist_ok=True)
                    s3.download_file(bucket, key, str(local / key.rsplit("/", 1)[-1]))
                    found = 1
                prefix = key + "/"
            else:
                prefix = key
            if not found:  # a prefix: LocalPath/<key relative to the prefix>
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                    for obj in page.get("Contents", []):
                        if obj["Key"].endswith("/"):
                            continue
                        dest = local / obj["Key"][len(prefix) :]
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        s3.download_file(bucket, obj["Key"], str(dest))
                        found += 1
            if not found:
                raise RuntimeError(f'ClientError: No S3 objects found under S3 URL "{uri}" given in input data source.')

    def _upload(self, s3: Any, job: FakeJob) -> None:
        for item in (job.model.processing_output_config or {}).get("Outputs", []):
            spec = item.get("S3Output")
            if not spec:
                continue
            local = Path(self._local(job, spec["LocalPath"]))
            bucket, key = _split(spec["S3Uri"])
            for path in sorted(p for p in local.rglob("*") if p.is_file()):
                rel = path.relative_to(local).as_posix()
                s3.upload_file(str(path), bucket, f"{key.rstrip('/')}/{rel}" if key else rel)

    def _command(self, job: FakeJob) -> list[str]:
        app = job.model.app_specification or {}
        argv = [*(app.get("ContainerEntrypoint") or IMAGE_ENTRYPOINT), *(app.get("ContainerArguments") or [])]
        if argv[0] in ("python", "python3"):
            argv[0] = sys.executable
        argv = [self._local(job, arg) for arg in argv]
        # the entrypoint's defaults are the /opt/ml paths themselves
        return argv + [
            "--input-dir",
            str(job.root / "processing" / "input"),
            "--output-dir",
            str(job.root / "processing" / "output"),
            "--failure-file",
            str(job.root / "output" / "message"),
        ]

    def _run(self, job: FakeJob) -> None:
        model, status, reason, rc = job.model, "Failed", None, None
        try:
            s3, logs = self._clients()
            (job.root / "code").mkdir()
            shutil.copy(self.entrypoint, job.root / "code" / "papermill_entrypoint.py")
            (job.root / "processing" / "input").mkdir(parents=True)
            self._download(s3, job)
            model.processing_start_time = utcnow()
            with suppress(logs.exceptions.ResourceAlreadyExistsException):
                logs.create_log_group(logGroupName=LOG_GROUP)
            stream = f"{job.name}/algo-1-{int(time.time())}"
            logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)

            with self._lock:
                self._in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self._in_flight)
            start = time.monotonic()
            try:
                if self.before_run:
                    self.before_run(job.name)
                if self.delay_s:
                    job.stop.wait(self.delay_s)
                if not job.stop.is_set():
                    rc = self._container(job, logs, stream)
            finally:
                with self._lock:
                    self._in_flight -= 1
                    self.runs.append((job.name, start, time.monotonic()))

            if job.stop.is_set():
                status = "Stopped"
            else:
                self._upload(s3, job)  # on failure too: the partly executed notebook
                message = job.root / "output" / "message"
                text = message.read_text(errors="replace")[:1024] if message.is_file() else None
                model.exit_message = text
                if rc == 0:
                    status = "Completed"
                else:
                    last = job.lines[-1] if job.lines else f"exit code {rc}"
                    reason = (text or last)[:1024]
        except Exception as exc:  # any fault of the fake or the inputs fails the job
            reason = str(exc)[:1024]
        finally:
            with self._lock:
                if job.stop.is_set():
                    status, reason = "Stopped", None
                model.processing_end_time = model.last_modified_time = utcnow()
                model.failure_reason = reason
                model.processing_job_status = status  # last: a poller sees the end after the outputs

    def _container(self, job: FakeJob, logs: Any, stream: str) -> int:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NOTEBOOK_") and k != "ENV"}
        env.update({"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", **job.environment})
        job.proc = subprocess.Popen(
            self._command(job),
            cwd=job.root / "processing" / "input",  # the image's WORKDIR
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: the kernel goes with it on stop
        )
        if job.stop.is_set():  # stopped while it was being started
            self._kill(job)
        assert job.proc.stdout is not None
        for line in job.proc.stdout:
            line = line.rstrip("\n")
            job.lines.append(line)
            if line.strip():
                event = {"timestamp": int(time.time() * 1000), "message": line}
                logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream, logEvents=[event])
        return job.proc.wait()

    def _kill(self, job: FakeJob) -> None:
        job.stop.set()
        proc = job.proc
        if proc is not None and proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group of the process this fake started

    def close(self) -> None:
        for job in self.jobs.values():
            if job.thread and job.thread.is_alive():
                self._kill(job)
                job.thread.join(timeout=10)
        shutil.rmtree(self._tmp, ignore_errors=True)

    def wait(self, timeout: float = 60) -> None:
        """Wait until every job started so far has ended."""
        deadline = time.monotonic() + timeout
        for job in list(self.jobs.values()):
            if job.thread:
                job.thread.join(timeout=max(0.0, deadline - time.monotonic()))
                if job.thread.is_alive():
                    raise TimeoutError(f"fake processing job {job.name} still running after {timeout} s")


@contextmanager
def sagemaker_runs_containers(endpoint_url: str, **options: Any) -> Iterator[FakeSageMaker]:
    """Processing jobs created through the moto server at `endpoint_url` run their container
    (see `FakeSageMaker` for the options); on exit, running jobs are killed and the temp
    folders removed."""
    fake = FakeSageMaker(endpoint_url, **options)
    create, stop = SageMakerResponse.create_processing_job, SageMakerResponse.stop_processing_job
    with (
        mock.patch.object(SageMakerResponse, "create_processing_job", lambda h: fake._create(create, h)),
        mock.patch.object(SageMakerResponse, "stop_processing_job", lambda h: fake._stop(stop, h)),
    ):
        try:
            yield fake
        finally:
            fake.close()


# -- CodeBuild → ECR ----------------------------------------------------------------------------
_ECR_URI = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/")


@dataclass
class FakeBuild:
    id: str
    project: str
    env: dict[str, str]  # the project's environment variables overlaid by the overrides
    status: str = "IN_PROGRESS"  # SUCCEEDED or FAILED once completed
    image: str | None = None  # <repository uri>:<tag> pushed
    reason: str | None = None


class FakeCodeBuild:
    """What `codebuild_pushes_images` yields: `builds` in the order they were started."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.builds: list[FakeBuild] = []

    def _start(self, original: Callable, handler: CodeBuildResponse) -> Any:
        result = original(handler)
        build = result.result["build"]
        project = handler.codebuild_backend.codebuild_projects[build["projectName"]]
        variables = {v["name"]: v for v in project.project_metadata["environment"].get("environmentVariables") or []}
        variables.update({v["name"]: v for v in handler._get_param("environmentVariablesOverride") or []})
        build["environment"] = {**build["environment"], "environmentVariables": list(variables.values())}
        env = {name: v.get("value", "") for name, v in variables.items()}
        self.builds.append(FakeBuild(build["id"], build["projectName"], env))
        return result

    def _batch_get(self, original: Callable, handler: CodeBuildResponse) -> Any:
        result = original(handler)  # moto marks every build it returns SUCCEEDED
        ours = {b.id: b for b in self.builds}
        for build in result.result["builds"]:
            fake = ours.get(build["id"])
            if fake is None:
                continue
            if fake.status == "IN_PROGRESS":
                self._complete(fake, handler)
            build["buildStatus"] = fake.status
        return result

    def _complete(self, build: FakeBuild, handler: CodeBuildResponse) -> None:
        repo_uri, tag = build.env.get("IMAGE_REPO", ""), build.env.get("IMAGE_TAG", "")
        match = _ECR_URI.match(repo_uri)
        account, region = match.groups() if match else (handler.current_account, handler.region)
        repo = repo_uri.rstrip("/").rsplit("/", 1)[-1]
        ecr = get_backend("ecr")[account][region]
        if self.fail:
            build.status, build.reason = "FAILED", "the build failed (FakeCodeBuild(fail=True))"
        elif not repo or not tag:
            build.status, build.reason = "FAILED", "IMAGE_REPO or IMAGE_TAG not set"
        elif repo not in ecr.repositories:
            build.status, build.reason = "FAILED", f"name unknown: The repository with name '{repo}' does not exist"
        else:
            config = hashlib.sha256(build.id.encode()).hexdigest()  # one image per build
            manifest = {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "size": 1024,
                    "digest": f"sha256:{config}",
                },
                "layers": [],
            }
            ecr.put_image(repo, json.dumps(manifest), tag)
            build.status, build.image = "SUCCEEDED", f"{repo_uri}:{tag}"


@contextmanager
def codebuild_pushes_images(fail: bool = False) -> Iterator[FakeCodeBuild]:
    """Builds started through the moto server push `IMAGE_REPO:IMAGE_TAG` (their environment
    overrides, else the project's variables) to moto's ECR when they complete, i.e. at the
    first BatchGetBuilds that returns them. `fail=True`: every build fails and pushes nothing."""
    fake = FakeCodeBuild(fail)
    start, batch_get = CodeBuildResponse.start_build, CodeBuildResponse.batch_get_builds
    with (
        mock.patch.object(CodeBuildResponse, "start_build", lambda h: fake._start(start, h)),
        mock.patch.object(CodeBuildResponse, "batch_get_builds", lambda h: fake._batch_get(batch_get, h)),
    ):
        yield fake


@contextmanager
def fakesnow_reads_s3_from_moto() -> Iterator[None]:
    """fakesnow's COPY INTO reads an s3:// file (a stage on a bucket) from moto, fetched to a
    local file first: DuckDB's httpfs, which it would use, cannot be downloaded here."""
    import fakesnow.copy_into as copy_into

    original = copy_into._source_urls
    fetched = Path(tempfile.mkdtemp(prefix="fakesnow-stage-"))

    def source_urls(source: str, files: list[str]) -> list[str]:
        urls = []
        for url in original(source, files):
            if url.startswith("s3://"):
                bucket, key = _split(url)
                local = fetched / bucket / key
                local.parent.mkdir(parents=True, exist_ok=True)
                boto3.client("s3").download_file(bucket, key, str(local))
                url = local.as_uri()
            urls.append(url)
        return urls

    try:
        with mock.patch.object(copy_into, "_source_urls", source_urls):
            yield
    finally:
        shutil.rmtree(fetched, ignore_errors=True)
