"""Notebook steps on SageMaker Processing (DEV, BETA, PROD), through plain boto3.

Inputs (`plan/storage_layout.py`):

- the notebook, the parameter file and `lib/` are uploaded to the step's `<input_uri>` with
  `S3Storage` (the reference layout; a file whose content is already at its key is not
  uploaded again, so an unchanged rerun uploads nothing);
- the run's resolved parameters (COMMON + the env section + rendered templates_dict, and
  `ENV`) go to `<notebook>/parameters/<sha256 of the JSON>.json`, beside `input/`: content-
  addressed, so a rerun of the same partition finds its file there; SageMaker limits each
  container argument and environment value to 256 characters, hence a file;
- the job downloads `<input_uri>` to `/opt/ml/processing/input` and the parameter file to
  `/opt/ml/processing/parameters/`, and runs `python3 /opt/ml/code/papermill_entrypoint.py
  --notebook <stem> --env <ENV> --kernel <kernel> --parameters <that file>` (containers/README.md)
  on the image `<ECR repository URI>:<plan.image.content_hash>` (the tag the container-image
  step pushes);
- `/opt/ml/processing/output` is uploaded at the end of the job to `<output_uri>/runs/<run key>/`
  (`<run key>` = the Dagster run id, `-retry<N>` for a retry): the executed notebook and the
  files written to `output_dir`; a completed job's files are then copied to `<output_uri>/`
  (the published copy), a failed job's stay in its run folder.

The job name is derived from pipeline, step, partition, run id and retry number (`job_name`),
so a run worker that restarts finds its job: one still running is attached to (its logs
followed), one that completed is not started again. The run id is part of the name because
SageMaker never lets a name be reused: a new Dagster run of the same partition needs a new job.

While the job runs, its CloudWatch log lines (`/aws/sagemaker/ProcessingJobs`, streams
`<job name>/...`) go to the Dagster log. Polls start at `poll_initial_s` and grow by
`poll_factor` up to `poll_max_s`. An interrupted step (the run terminated) stops the job.
"""

import hashlib
import json
import re
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from dagster import DagsterExecutionInterruptedError, MetadataValue
from pydantic import Field

from ml_pipelines.aws import clients
from ml_pipelines.aws.logs import LogFollower
from ml_pipelines.aws.storage import S3Storage
from ml_pipelines.config.parameters import split_s3_uri
from ml_pipelines.plan.model import NotebookPlan
from ml_pipelines.plan.storage_layout import run_key, run_uri
from ml_pipelines.steps import NotebookBackend, StepFailed, StepOutcome, StepPreconditionFailed
from ml_pipelines.steps.links import s3_object_url

__all__ = ["LOG_GROUP", "PARAMETERS_FOLDER", "SageMakerNotebookBackend", "job_name"]

LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
PARAMETERS_FOLDER = "parameters"
ENTRYPOINT = ["python3", "/opt/ml/code/papermill_entrypoint.py"]
INPUT_DIR = "/opt/ml/processing/input"
PARAMETERS_DIR = "/opt/ml/processing/parameters"
OUTPUT_DIR = "/opt/ml/processing/output"
MAX_NAME = 63
_REPOSITORY_URIS: dict[tuple[str | None, str | None, str], str] = {}  # ECR's answer, per process
_RUNNING = ("InProgress", "Stopping")


def job_name(plan: NotebookPlan, run_id: str, retry_number: int = 0) -> str:
    """`<pipeline>-<step>-<partition start YYYYMMDDHHMM>-<run id[:8]>-r<retry>`, with every
    character outside [a-zA-Z0-9-] made a `-`; longer than 63 characters, it is cut and ends
    with an 8-character hash of the whole name."""
    window = plan.run.window
    partition = window.start.strftime("%Y%m%d%H%M") if window is not None else "all"
    raw = f"{plan.run.pipeline_id}-{plan.run.step_name}-{partition}-{run_id[:8]}-r{retry_number}"
    name = re.sub(r"-{2,}", "-", re.sub(r"[^a-zA-Z0-9-]", "-", raw)).strip("-")
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9].rstrip('-')}-{digest}"


def _join(prefix: str, rel: str) -> str:
    return f"{prefix.rstrip('/')}/{rel}"


class SageMakerNotebookBackend(NotebookBackend):
    """Runs a notebook step as a SageMaker Processing job on the step's image."""

    role_arn: str = Field(description="IAM role the Processing job runs as (ML_PIPELINES_SAGEMAKER_ROLE_ARN).")
    ecr_repository: str = Field(
        description="ECR repository of the notebook images (ML_PIPELINES_ECR_REPOSITORY): its URI, e.g. "
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ml-pipelines, or its name (the URI is then looked up "
        "in ECR); the image is <URI>:<the container-image step's content hash>."
    )
    storage: S3Storage = Field(description="Where inputs are staged and outputs published (the `storage` resource).")
    region_name: str | None = Field(default=None, description="AWS region; None uses boto3's chain.")
    endpoint_url: str | None = Field(
        default=None, description="SageMaker and CloudWatch Logs endpoint; None uses boto3's chain (AWS_ENDPOINT_URL)."
    )
    poll_initial_s: float = Field(default=5.0, description="First wait between status polls.")
    poll_max_s: float = Field(default=60.0, description="Longest wait between status polls.")
    poll_factor: float = Field(default=1.5, description="Each wait is the previous one times this.")
    max_runtime_s: int = Field(default=86400, description="The job's StoppingCondition.MaxRuntimeInSeconds.")

    def _client(self, service: str) -> Any:
        return clients.client(service, self.region_name, self.endpoint_url)

    def image_uri(self, plan: NotebookPlan) -> str:
        return f"{self.repository_uri()}:{plan.image.content_hash}"

    def repository_uri(self) -> str:
        """`ecr_repository` when it is a URI (`<registry host>/<name>`), else ECR's URI of that name."""
        repository = self.ecr_repository.strip().rstrip("/")
        if "/" in repository and "." in repository.split("/", 1)[0]:
            return repository
        key = (self.region_name, self.endpoint_url, repository)
        if key not in _REPOSITORY_URIS:
            try:
                found = self._client("ecr").describe_repositories(repositoryNames=[repository])["repositories"]
            except ClientError as exc:
                error = exc.response.get("Error", {})
                raise StepPreconditionFailed(
                    f"ECR repository {repository!r} (ML_PIPELINES_ECR_REPOSITORY): {error.get('Code')}: "
                    f"{error.get('Message')}"
                ) from exc
            _REPOSITORY_URIS[key] = found[0]["repositoryUri"]
        return _REPOSITORY_URIS[key]

    # -- staging -------------------------------------------------------------------------------
    def _stage(self, plan: NotebookPlan) -> list[str]:
        """Upload the notebook, parameter file and lib/ to the step's input folder."""
        storage, input_uri = self.storage, plan.input_uri
        uris = [storage.put_file(str(plan.notebook), _join(input_uri, plan.notebook.name))]
        if plan.parameter_file is not None:
            uris.append(storage.put_file(str(plan.parameter_file), _join(input_uri, plan.parameter_file.name)))
        if plan.lib_dir is not None:
            for src in sorted(p for p in plan.lib_dir.rglob("*") if p.is_file()):
                rel = src.relative_to(plan.lib_dir)
                if "__pycache__" not in rel.parts:
                    uris.append(storage.put_file(str(src), _join(input_uri, f"lib/{rel.as_posix()}")))
        return uris

    def _stage_parameters(self, plan: NotebookPlan) -> str:
        """Upload the run's parameters as `<notebook>/parameters/<sha256>.json`; return its URI."""
        text = json.dumps({**plan.parameters, "ENV": plan.run.env}, sort_keys=True, default=str)
        digest = hashlib.sha256(text.encode()).hexdigest()[:32]
        uri = _join(plan.input_uri.rstrip("/").rsplit("/", 1)[0], f"{PARAMETERS_FOLDER}/{digest}.json")
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / f"{digest}.json"
            local.write_text(text)
            return self.storage.put_file(str(local), uri)

    def request(self, plan: NotebookPlan, name: str, parameters_uri: str, output_uri: str) -> dict[str, Any]:
        """The CreateProcessingJob request of a run."""
        parameters_name = parameters_uri.rsplit("/", 1)[1]
        return {
            "ProcessingJobName": name,
            "RoleArn": self.role_arn,
            "AppSpecification": {
                "ImageUri": self.image_uri(plan),
                "ContainerEntrypoint": ENTRYPOINT,
                "ContainerArguments": [
                    "--notebook",
                    plan.notebook.stem,
                    "--env",
                    plan.run.env,
                    "--kernel",
                    plan.image.kernel,
                    "--parameters",
                    f"{PARAMETERS_DIR}/{parameters_name}",
                ],
            },
            "ProcessingResources": {
                "ClusterConfig": {
                    "InstanceCount": plan.instance_count,
                    "InstanceType": plan.instance_type,
                    "VolumeSizeInGB": plan.volume_size_gb,
                }
            },
            "ProcessingInputs": [
                {
                    "InputName": "input",
                    "S3Input": {
                        "S3Uri": plan.input_uri,
                        "LocalPath": INPUT_DIR,
                        "S3DataType": "S3Prefix",
                        "S3InputMode": "File",
                        "S3DataDistributionType": "FullyReplicated",
                    },
                },
                {  # one object: its key is the whole prefix
                    "InputName": "parameters",
                    "S3Input": {
                        "S3Uri": parameters_uri,
                        "LocalPath": PARAMETERS_DIR,
                        "S3DataType": "S3Prefix",
                        "S3InputMode": "File",
                        "S3DataDistributionType": "FullyReplicated",
                    },
                },
            ],
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": "output",
                        "S3Output": {"S3Uri": output_uri, "LocalPath": OUTPUT_DIR, "S3UploadMode": "EndOfJob"},
                    }
                ]
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": self.max_runtime_s},
            "Environment": {"ENV": plan.run.env, "NOTEBOOK_NAME": plan.notebook.stem},
            "Tags": [
                {"Key": "ml_pipelines/pipeline", "Value": plan.run.pipeline_id[:256]},
                {"Key": "ml_pipelines/step", "Value": plan.run.step_name[:256]},
                {"Key": "ml_pipelines/env", "Value": plan.run.env},
            ],
        }

    # -- job -----------------------------------------------------------------------------------
    @staticmethod
    def _describe(sm: Any, name: str) -> dict[str, Any] | None:
        try:
            return sm.describe_processing_job(ProcessingJobName=name)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") == "ValidationException" and "not find" in error.get("Message", ""):
                return None
            raise StepFailed(f"describe processing job {name}: {error.get('Code')}: {error.get('Message')}") from exc

    def _create(self, sm: Any, request: dict[str, Any]) -> None:
        try:
            sm.create_processing_job(**request)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = error.get("Code", ""), error.get("Message", "")
            name = request["ProcessingJobName"]
            if code == "ResourceInUse" or "must be unique" in message:
                return  # created meanwhile by another attempt of this run: attach to it
            cls = StepPreconditionFailed if code in ("AccessDeniedException", "ResourceLimitExceeded") else StepFailed
            if code == "ValidationException" and "role" in message.lower():
                cls = StepPreconditionFailed
            raise cls(f"create processing job {name}: {code}: {message}") from exc

    def _wait(self, sm: Any, name: str, logs: LogFollower) -> dict[str, Any]:
        delay = self.poll_initial_s
        while True:
            job = self._describe(sm, name)
            logs.poll()
            if job is None:
                raise StepFailed(f"processing job {name} disappeared while it ran")
            if job["ProcessingJobStatus"] not in _RUNNING:
                logs.poll()  # lines written between the last poll and the end
                return job
            time.sleep(delay)
            delay = min(delay * self.poll_factor, self.poll_max_s)

    def _publish(self, run_output_uri: str, output_uri: str) -> list[str]:
        """Copy a completed run's output files from its run folder to `output_uri`."""
        client = self.storage.client()
        bucket, _ = split_s3_uri(output_uri)
        published = []
        for uri in self.storage.list(run_output_uri):
            src_bucket, src_key = split_s3_uri(uri)
            rel = uri[len(run_output_uri) :]
            dest_bucket, dest_key = split_s3_uri(_join(output_uri, rel))
            try:
                client.copy_object(Bucket=dest_bucket, Key=dest_key, CopySource={"Bucket": src_bucket, "Key": src_key})
            except (ClientError, BotoCoreError) as exc:
                raise StepFailed(f"publish {uri} to s3://{dest_bucket}/{dest_key}: {exc}") from exc
            published.append(f"s3://{dest_bucket}/{dest_key}")
        return published

    def run(self, context: Any, plan: NotebookPlan) -> StepOutcome:
        start = time.monotonic()
        for path in (plan.notebook, plan.parameter_file):
            if path is not None and not path.is_file():
                raise StepPreconditionFailed(f"Notebook step {plan.run.step_name}: file not found: {path}")
        retry = getattr(context, "retry_number", 0) or 0
        key = run_key(context.run_id, retry)
        run_output_uri = run_uri(plan.output_uri, key)
        name = job_name(plan, context.run_id, retry)
        sm, logs_client = self._client("sagemaker"), self._client("logs")
        region = sm.meta.region_name
        console = f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}#/processing-jobs/{name}"

        job = self._describe(sm, name)
        if job is None:
            staged = self._stage(plan)
            parameters_uri = self._stage_parameters(plan)
            context.log.info(f"Inputs in {plan.input_uri} ({len(staged)} file(s)); parameters in {parameters_uri}")
            self._create(sm, self.request(plan, name, parameters_uri, run_output_uri))
            context.log.info(f"Started processing job {name} on {self.image_uri(plan)}: {console}")
        elif job["ProcessingJobStatus"] in _RUNNING:
            context.log.info(f"Processing job {name} is already {job['ProcessingJobStatus']}: attaching to it")
        else:
            context.log.info(f"Processing job {name} already ended ({job['ProcessingJobStatus']}): not started again")

        logs = LogFollower(logs_client, LOG_GROUP, f"{name}/", name, context.log.info)
        try:
            job = self._wait(sm, name, logs)
        except (KeyboardInterrupt, DagsterExecutionInterruptedError):
            context.log.warning(f"Step interrupted: stopping processing job {name}")
            try:
                sm.stop_processing_job(ProcessingJobName=name)
            except (ClientError, BotoCoreError) as exc:
                context.log.error(f"Could not stop processing job {name}: {exc}")
            raise

        status = job["ProcessingJobStatus"]
        if status != "Completed":
            reason = job.get("FailureReason") or job.get("ExitMessage") or "no reason given"
            tail = "\n".join(logs.last)
            message = (
                f"Processing job {name} {status}: {reason}\n"
                f"Partly executed notebook and outputs: {run_output_uri}\n{console}"
                + (f"\nLast log lines:\n{tail}" if tail else "")
            )
            context.log.error(message)
            raise StepFailed(message)

        published = self._publish(run_output_uri, plan.output_uri)
        duration = self._job_seconds(job) or (time.monotonic() - start)
        instance_hours = round(plan.instance_count * duration / 3600, 4)
        context.log.info(f"Processing job {name} completed; published {len(published)} file(s) to {plan.output_uri}")
        return StepOutcome(
            metadata={
                "job_name": name,
                "job_arn": job.get("ProcessingJobArn", ""),
                "console_url": MetadataValue.url(console),
                "image_uri": self.image_uri(plan),
                "output_uri": plan.output_uri,
                "run_output_uri": run_output_uri,
                # the run's executed notebook: S3 console (the webserver reads local files only)
                "notebook": MetadataValue.url(
                    s3_object_url(_join(run_output_uri, f"{plan.notebook.stem}.ipynb"), region)
                ),
                "notebook_uri": _join(run_output_uri, f"{plan.notebook.stem}.ipynb"),
                "output_files": published,
                "duration_s": round(duration, 3),
                "instance_hours": instance_hours,
                "instance_type": plan.instance_type,
                "instance_count": plan.instance_count,
            }
        )

    @staticmethod
    def _job_seconds(job: dict[str, Any]) -> float | None:
        """The job's running time from SageMaker's timestamps, when it reports them."""
        begin, end = job.get("ProcessingStartTime"), job.get("ProcessingEndTime")
        if isinstance(begin, datetime) and isinstance(end, datetime) and end >= begin:
            return (end - begin).total_seconds()
        return None
