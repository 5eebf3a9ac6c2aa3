"""Glue steps on AWS Glue (DEV, BETA, PROD), through boto3.

A run:
1. uploads (incrementally, through `S3Storage`) the script to `<input>/<script>.py`, `lib/`'s
   files to `<lib>/`, each top-level package folder of `lib/` also as a zip `<lib>/<name>.zip`
   (Glue puts only files on the path, not folders), the py files to `<lib>/` and the jars to
   `<jar>/`; a `script_loc: common` script's to `input/common_lib/`, `input/common_py_files/`
   and `input/common_jars/`: the layout LOCAL mirrors and `ml-pipelines plan` prints;
2. attaches to a run of the job that is still STARTING/RUNNING/WAITING with the same run
   arguments (a run worker that restarted), else makes the job definition current and starts a
   run. The definition: script location, `--extra-py-files` (lib/'s .py and .zip files and the
   py files), `--extra-jars`, `--additional-python-modules` (the requirements file's lines),
   `--TempDir`, worker type and count, Glue version, role. It is created when missing; when
   `get_job` differs from it, `update_job` replaces it; an endpoint that does not implement
   `update_job` (HTTP 500/501, as moto) gets `delete_job` + `create_job` instead (which, on
   real Glue, would drop the job's run history: real Glue implements update_job);
3. polls `get_job_run` with backoff (`poll_initial_s` doubling to `poll_max_s`) until the run
   ends, forwarding the run's CloudWatch lines (`/aws-glue/jobs/output` and `/error`, streams
   named after the run id) to the Dagster log; a run that does not succeed fails the step with
   Glue's `ErrorMessage` and the last error lines. An interrupted
   step (the Dagster run terminated) stops the Glue run before re-raising.

Run arguments are the plan's arguments as `--key value` (Glue passes `--JOB_NAME` itself; the
plan's job name is the Glue job's name). boto3 rather than dagster-aws `PipesGlueClient`: that
client always starts a new run (no attach), polls every 5 s without backoff, and its default
message reader waits on CloudWatch; the scripts do not open a Pipes session on Glue anyway.
"""

import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError
from pydantic import Field

from ml_pipelines.aws import clients
from ml_pipelines.aws.logs import LogFollower
from ml_pipelines.aws.storage import S3Storage
from ml_pipelines.plan.model import GluePlan
from ml_pipelines.steps import GlueBackend, StepFailed, StepOutcome, StepPreconditionFailed

__all__ = ["AwsGlueBackend", "job_definition", "requirements_modules", "run_arguments"]

# Glue writes a run's driver output and errors to streams named after the run id.
OUTPUT_LOG_GROUP = "/aws-glue/jobs/output"
ERROR_LOG_GROUP = "/aws-glue/jobs/error"
ACTIVE_STATES = ("STARTING", "RUNNING", "WAITING", "STOPPING")
_ATTACHABLE = ("STARTING", "RUNNING", "WAITING")
_NOT_IMPLEMENTED_STATUS = (500, 501)
# Glue error codes another attempt will not fix: the role, permissions or input must change.
_PRECONDITION_CODES = {"AccessDeniedException", "InvalidInputException", "EntityNotFoundException"}
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so an unchanged folder zips to the same bytes


def _join(prefix: str, name: str) -> str:
    return f"{prefix.rstrip('/')}/{name}"


def requirements_modules(requirements_file: Path | None) -> str:
    """`--additional-python-modules`: the requirement lines, comma-separated, without comments
    and pip options."""
    if requirements_file is None:
        return ""
    modules = []
    for line in requirements_file.read_text().splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            modules.append(line)
    return ",".join(modules)


def run_arguments(plan: GluePlan) -> dict[str, str]:
    """The run's `--key value` arguments (JOB_NAME is Glue's own)."""
    return {f"--{k}": str(v) for k, v in plan.arguments.items() if k != "JOB_NAME"}


def job_definition(
    plan: GluePlan,
    *,
    role_arn: str,
    glue_version: str,
    extra_py_files: list[str],
    extra_jars: list[str],
    max_concurrent_runs: int,
) -> dict[str, Any]:
    """The Glue job (CreateJob's fields but Name) the plan needs."""
    arguments = {"--job-language": "python", "--TempDir": plan.temp_uri}
    if extra_py_files:
        arguments["--extra-py-files"] = ",".join(extra_py_files)
    if extra_jars:
        arguments["--extra-jars"] = ",".join(extra_jars)
    if modules := requirements_modules(plan.requirements_file):
        arguments["--additional-python-modules"] = modules
    return {
        "Role": role_arn,
        "Command": {"Name": "glueetl", "ScriptLocation": _join(plan.input_uri, plan.script.name), "PythonVersion": "3"},
        "DefaultArguments": arguments,
        "GlueVersion": glue_version,
        "WorkerType": plan.worker_type,
        "NumberOfWorkers": int(plan.number_of_workers),
        "ExecutionProperty": {"MaxConcurrentRuns": max_concurrent_runs},
    }


def definition_differences(current: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """The fields of `wanted` that `current` (get_job's Job) lacks or holds otherwise. Dict fields
    are compared on `wanted`'s keys, except DefaultArguments, compared whole."""
    changed = []
    for key, value in wanted.items():
        have = current.get(key)
        if isinstance(value, dict) and key != "DefaultArguments":
            have = {k: (have or {}).get(k) for k in value}
        if have != value:
            changed.append(key)
    return changed


def _zip_folder(folder: Path, target: Path) -> None:
    """`folder` as a zip whose root holds `folder`'s name; same content, same bytes."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            info = zipfile.ZipInfo(path.relative_to(folder.parent).as_posix(), date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())


def _glue_error(exc: Exception, action: str) -> StepFailed:
    if isinstance(exc, NoCredentialsError):
        return StepPreconditionFailed(f"{action}: no AWS credentials found; set them (profile, role or environment).")
    if isinstance(exc, NoRegionError):
        return StepPreconditionFailed(f"{action}: no AWS region set; set AWS_REGION or the profile's region.")
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        cls = StepPreconditionFailed if code in _PRECONDITION_CODES else StepFailed
        return cls(f"{action}: {code}: {error.get('Message', '')}".rstrip(": "))
    return StepFailed(f"{action} failed: {exc}")


class AwsGlueBackend(GlueBackend):
    """Runs a Glue step as an AWS Glue job run."""

    # no `from __future__ import annotations` here: Dagster reads this annotation at runtime
    storage: S3Storage = Field(description="Where the script, lib/, py files and jars are uploaded.")
    role_arn: str = Field(description="IAM role the Glue job runs as (ML_PIPELINES_GLUE_ROLE_ARN).")
    glue_version: str = Field(default="4.0", description="Glue version of the job (ML_PIPELINES_GLUE_VERSION).")
    region_name: str | None = Field(default=None, description="AWS region; None uses boto3's chain.")
    endpoint_url: str | None = Field(default=None, description="Glue endpoint; None uses boto3's chain.")
    max_concurrent_runs: int = Field(default=10, description="Runs of one job at once (partitions, backfills).")
    poll_initial_s: float = Field(default=5.0, description="First wait between two status polls.")
    poll_max_s: float = Field(default=60.0, description="Longest wait between two status polls (doubling).")

    def client(self) -> Any:
        return clients.client("glue", self.region_name, self.endpoint_url)

    def _upload(self, plan: GluePlan, scratch: Path) -> tuple[list[str], list[str], list[str]]:
        """Upload the job's files; return (URIs written or already current, --extra-py-files, --extra-jars).
        A model script's lib/ and py files go to `lib/`, its jars to `jar/`; a common script's
        to `input/common_lib/`, `input/common_py_files/` and `input/common_jars/`."""
        storage, common = self.storage, plan.common_input_uris
        lib_uri = common.get("common_lib", plan.lib_uri)
        py_files_uri = common.get("common_py_files", plan.lib_uri)
        jar_uri = common.get("common_jars", plan.jar_uri)
        uploaded = [storage.put_file(str(plan.script), _join(plan.input_uri, plan.script.name))]
        extra_py_files = []
        if plan.lib_dir is not None and plan.lib_dir.is_dir():
            lib_files = storage.put_tree(str(plan.lib_dir), lib_uri)
            uploaded += lib_files
            top = lib_uri.rstrip("/") + "/"
            extra_py_files += [u for u in lib_files if "/" not in u[len(top) :] and u.endswith((".py", ".zip"))]
            for folder in sorted(p for p in plan.lib_dir.iterdir() if p.is_dir() and any(p.rglob("*.py"))):
                archive = scratch / f"{folder.name}.zip"
                _zip_folder(folder, archive)
                uri = storage.put_file(str(archive), _join(lib_uri, archive.name))
                uploaded.append(uri)
                extra_py_files.append(uri)
        for py_file in plan.py_files:
            uri = storage.put_file(str(py_file), _join(py_files_uri, py_file.name))
            uploaded.append(uri)
            extra_py_files.append(uri)
        jars = [storage.put_file(str(jar), _join(jar_uri, jar.name)) for jar in plan.jars]
        return uploaded + jars, extra_py_files, jars

    def _ensure_job(self, client: Any, context: Any, name: str, wanted: dict[str, Any]) -> str:
        """Create or update the job to `wanted`; return created, updated, replaced or unchanged."""
        try:
            current = client.get_job(JobName=name)["Job"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "EntityNotFoundException":
                raise _glue_error(exc, f"read Glue job {name}") from exc
            current = None
        except BotoCoreError as exc:
            raise _glue_error(exc, f"read Glue job {name}") from exc
        try:
            if current is None:
                client.create_job(Name=name, **wanted)
                context.log.info(f"Created Glue job {name}")
                return "created"
            changed = definition_differences(current, wanted)
            if not changed:
                return "unchanged"
            context.log.info(f"Glue job {name}: definition changed ({', '.join(changed)}); updating it")
            try:
                client.update_job(JobName=name, JobUpdate=wanted)
                return "updated"
            except ClientError as exc:
                if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") not in _NOT_IMPLEMENTED_STATUS:
                    raise
                context.log.warning(f"Glue job {name}: update_job failed on this endpoint; deleting and recreating it")
                client.delete_job(JobName=name)
                client.create_job(Name=name, **wanted)
                return "replaced"
        except (ClientError, BotoCoreError) as exc:
            raise _glue_error(exc, f"create or update Glue job {name}") from exc

    def _attachable_run(self, client: Any, name: str, arguments: dict[str, str]) -> str | None:
        """The id of an active run of `name` started with `arguments` (its Arguments hold them)."""
        try:
            for page in client.get_paginator("get_job_runs").paginate(JobName=name):
                for run in page.get("JobRuns", []):
                    given = run.get("Arguments") or {}
                    if run.get("JobRunState") in _ATTACHABLE and all(given.get(k) == v for k, v in arguments.items()):
                        return run["Id"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "EntityNotFoundException":
                return None
            raise _glue_error(exc, f"list the runs of Glue job {name}") from exc
        except BotoCoreError as exc:
            raise _glue_error(exc, f"list the runs of Glue job {name}") from exc
        return None

    def _wait(self, client: Any, context: Any, name: str, run_id: str, logs: list[LogFollower]) -> dict[str, Any]:
        """Poll the run until it leaves the active states, forwarding its log lines; return its JobRun."""
        delay = self.poll_initial_s
        state = None
        while True:
            for follower in logs:
                follower.poll()
            try:
                run = client.get_job_run(JobName=name, RunId=run_id)["JobRun"]
            except (ClientError, BotoCoreError) as exc:
                raise _glue_error(exc, f"read Glue job run {name} {run_id}") from exc
            if run["JobRunState"] != state:
                state = run["JobRunState"]
                context.log.info(f"Glue job {name} run {run_id}: {state}")
            if state not in ACTIVE_STATES:
                for follower in logs:  # lines written between the last poll and the end
                    follower.poll()
                return run
            time.sleep(delay)
            delay = min(delay * 2, self.poll_max_s)

    def _stop(self, client: Any, context: Any, name: str, run_id: str) -> None:
        try:
            client.batch_stop_job_run(JobName=name, JobRunIds=[run_id])
            context.log.info(f"Stopped Glue job {name} run {run_id}")
        except (ClientError, BotoCoreError) as exc:
            context.log.warning(f"Could not stop Glue job {name} run {run_id}: {exc}")

    def console_url(self, client: Any, name: str, run_id: str) -> str:
        region = client.meta.region_name
        return (
            f"https://{region}.console.aws.amazon.com/gluestudio/home?region={region}"
            f"#/job/{quote(name, safe='')}/run/{run_id}"
        )

    def run(self, context: Any, plan: GluePlan) -> StepOutcome:
        start = time.monotonic()
        name = plan.job_name
        if not (self.role_arn or "").strip():
            raise StepPreconditionFailed(f"Glue job {name}: no IAM role set; set ML_PIPELINES_GLUE_ROLE_ARN.")
        for path in (plan.script, *plan.jars, *plan.py_files):
            if not path.is_file():
                raise StepPreconditionFailed(f"Glue job {name}: file not found: {path}")
        if plan.requirements_file is not None and not plan.requirements_file.is_file():
            raise StepPreconditionFailed(f"Glue job {name}: requirements file not found: {plan.requirements_file}")
        with tempfile.TemporaryDirectory(prefix="ml-pipelines-glue-") as scratch:
            uploaded, extra_py_files, extra_jars = self._upload(plan, Path(scratch))
        try:
            client = self.client()
        except BotoCoreError as exc:
            raise _glue_error(exc, f"Glue job {name}") from exc
        arguments = run_arguments(plan)
        run_id = self._attachable_run(client, name, arguments)
        if run_id is not None:
            definition = "attached"
            context.log.info(f"Glue job {name}: attaching to run {run_id}, still active with the same arguments")
        else:
            wanted = job_definition(
                plan,
                role_arn=self.role_arn,
                glue_version=self.glue_version,
                extra_py_files=extra_py_files,
                extra_jars=extra_jars,
                max_concurrent_runs=self.max_concurrent_runs,
            )
            definition = self._ensure_job(client, context, name, wanted)
            try:
                run_id = client.start_job_run(JobName=name, Arguments=arguments)["JobRunId"]
            except (ClientError, BotoCoreError) as exc:
                raise _glue_error(exc, f"start Glue job {name}") from exc
            context.log.info(f"Started Glue job {name} run {run_id}")
        url = self.console_url(client, name, run_id)
        logs_client = clients.client("logs", self.region_name, self.endpoint_url)
        output = LogFollower(logs_client, OUTPUT_LOG_GROUP, run_id, name, context.log.info)
        errors = LogFollower(logs_client, ERROR_LOG_GROUP, run_id, name, context.log.warning)
        try:
            run = self._wait(client, context, name, run_id, [output, errors])
        except StepFailed:
            raise
        except BaseException:  # the Dagster run was terminated: stop the Glue run too
            self._stop(client, context, name, run_id)
            raise
        duration = round(time.monotonic() - start, 3)
        if run["JobRunState"] != "SUCCEEDED":
            tail = "\n".join(errors.last or output.last)
            raise StepFailed(
                f"Glue job {name} run {run_id} ended {run['JobRunState']} after {duration}s: "
                f"{run.get('ErrorMessage') or 'Glue gave no error message'}\n{url}"
                + (f"\nLast log lines:\n{tail}" if tail else "")
            )
        return StepOutcome(
            metadata={
                "job_name": name,
                "run_id": run_id,
                "console_url": url,
                "arguments": arguments,
                "job_definition": definition,
                "uploaded": uploaded,
                "duration_s": duration,
                "execution_time_s": run.get("ExecutionTime"),
            }
        )
