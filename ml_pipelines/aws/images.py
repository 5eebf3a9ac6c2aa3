"""Container images on AWS: CodeBuild builds `containers/<kernel>/Dockerfile` and pushes it to ECR.

The image tag is the plan's content hash. When ECR already has it, nothing is built. Otherwise
the build context (the Dockerfile, the model's requirements as `requirements.txt`, and the
other files the Dockerfile COPYs, looked up beside it and then in `containers/`) is zipped
deterministically (sorted entries, fixed timestamps and modes) and uploaded through
`S3Storage` to `s3://<context_bucket>/<context_prefix>/<image_name>/<content_hash>.zip`, so an
unchanged context is not uploaded again. CodeBuild builds it with the S3 source override and
the buildspec below; the step then checks that ECR has the tag.

Buildspec: passed with every build as `buildspecOverride` (`BUILDSPEC`), so the CodeBuild
project needs no buildspec of its own. What the project must have: a Linux environment with
`privilegedMode: true` (Docker), and a service role that can read the context bucket, call
`ecr:GetAuthorizationToken` and push to the repository. Its own source settings are replaced
by the override on each build.

Clients come from boto3's default chain (`AWS_ENDPOINT_URL` included) unless `region_name`
or `endpoint_url` is set. This resource reads no environment variables of ours: environment.py
binds `ecr_repository` and `codebuild_project`.
"""

# No `from __future__ import annotations`: Dagster reads the nested resource's annotation.

import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from dagster import DagsterExecutionInterruptedError
from pydantic import Field

from ml_pipelines.aws import clients
from ml_pipelines.aws.storage import S3Storage
from ml_pipelines.plan.images import dockerfile_copies
from ml_pipelines.plan.model import ContainerImagePlan
from ml_pipelines.steps import ContainerImageBackend, StepFailed, StepOutcome, StepPreconditionFailed

__all__ = ["BUILDSPEC", "CodeBuildImageBackend", "build_context_files", "write_context_zip"]

BUILDSPEC = """\
version: 0.2
phases:
  pre_build:
    commands:
      - aws ecr get-login-password --region "$AWS_DEFAULT_REGION" | docker login --username AWS --password-stdin "${IMAGE_REPO%%/*}"
  build:
    commands:
      - docker build -t "$IMAGE_REPO:$IMAGE_TAG" .
      - docker push "$IMAGE_REPO:$IMAGE_TAG"
"""

_FAILED_PHASE_STATUSES = {"FAILED", "FAULT", "TIMED_OUT", "STOPPED", "CLIENT_ERROR"}
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can carry


def build_context_files(plan: ContainerImagePlan) -> dict[str, Path | None]:
    """Zip entry name -> local file (None: an empty file) for the image's build context."""
    if plan.dockerfile is None or not Path(plan.dockerfile).is_file():
        raise StepPreconditionFailed(
            f"no Dockerfile for kernel {plan.kernel!r}: add containers/{plan.kernel}/Dockerfile "
            "(copy containers/python3/Dockerfile)."
        )
    dockerfile = Path(plan.dockerfile)
    if plan.requirements_file is not None and not Path(plan.requirements_file).is_file():
        raise StepPreconditionFailed(f"requirements file {plan.requirements_file} does not exist.")
    files: dict[str, Path | None] = {"Dockerfile": dockerfile, "requirements.txt": plan.requirements_file}
    for name, found in dockerfile_copies(dockerfile).items():
        if found is None:
            raise StepPreconditionFailed(
                f"{dockerfile} copies {name!r}, which is neither beside it nor in {dockerfile.parent.parent}/."
            )
        files[name] = found
    return files


def write_context_zip(files: dict[str, Path | None], target: Path) -> Path:
    """A zip of `files` whose bytes depend only on their names and contents."""
    with zipfile.ZipFile(target, "w") as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3  # unix, whatever the host
            source = files[name]
            archive.writestr(info, source.read_bytes() if source is not None else b"", compresslevel=6)
    return target


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class CodeBuildImageBackend(ContainerImageBackend):
    """Builds the step's image with CodeBuild into ECR, or reuses the tag already there."""

    storage: S3Storage
    ecr_repository: str = Field(default="", description="ECR repository name or URI (ML_PIPELINES_ECR_REPOSITORY).")
    codebuild_project: str = Field(default="", description="CodeBuild project (ML_PIPELINES_CODEBUILD_PROJECT).")
    context_bucket: str = Field(default="", description="Bucket the zipped build context is uploaded to.")
    context_prefix: str = Field(default="codebuild-context", description="Key prefix of the build contexts.")
    region_name: str | None = Field(default=None, description="AWS region; None uses boto3's chain.")
    endpoint_url: str | None = Field(default=None, description="Endpoint for ECR and CodeBuild; None: boto3's.")
    poll_initial_s: float = Field(default=5.0, description="First wait between build status polls.")
    poll_max_s: float = Field(default=60.0, description="Longest wait between polls (the wait doubles).")

    def client(self, service: str) -> Any:
        return clients.client(service, self.region_name, self.endpoint_url)

    @property
    def repository_name(self) -> str:
        """The repository's name, also when the setting is its URI (`<registry host>/<name>`)."""
        repository = self.ecr_repository.strip().rstrip("/")
        host, _, name = repository.partition("/")
        return name if name and "." in host else repository

    # -- the step ---------------------------------------------------------------------------

    def build(self, context: Any, plan: ContainerImagePlan) -> StepOutcome:
        self._check_settings()
        ecr = self.client("ecr")
        repository_uri = self._repository_uri(ecr)
        tag = plan.content_hash
        image_uri = f"{repository_uri}:{tag}"
        digest = self._image_digest(ecr, tag)
        if digest is not None:
            context.log.info(f"ECR already has {image_uri}: nothing to build")
            return StepOutcome(metadata={"reused": True, "image_uri": image_uri, "digest": digest, "content_hash": tag})

        source_uri = self._upload_context(plan)
        codebuild = self.client("codebuild")
        build = self._start_build(codebuild, source_uri, repository_uri, tag)
        build_id = build["id"]
        context.log.info(f"CodeBuild build {build_id} started for {image_uri} from {source_uri}")
        try:
            build = self._wait(codebuild, build, context.log.info, time.sleep)
        except (KeyboardInterrupt, DagsterExecutionInterruptedError):  # the run was terminated
            context.log.warning(f"Step interrupted: stopping CodeBuild build {build_id}")
            try:
                codebuild.stop_build(id=build_id)
            except (ClientError, BotoCoreError) as exc:
                context.log.error(f"Could not stop CodeBuild build {build_id}: {exc}")
            raise
        log_link = self._log_link(build)
        status = build.get("buildStatus")
        if status != "SUCCEEDED":
            raise StepFailed(
                f"CodeBuild build {build_id} ended {status} in phase {self._failed_phase(build)}"
                f"{self._phase_reason(build)}; logs: {log_link}"
            )
        digest = self._image_digest(ecr, tag)
        if digest is None:
            raise StepFailed(
                f"CodeBuild build {build_id} succeeded but pushed no image tagged {tag} to "
                f"{repository_uri}; check the project's buildspec and role. Logs: {log_link}"
            )
        context.log.info(f"Built {image_uri} ({digest})")
        return StepOutcome(
            metadata={
                "reused": False,
                "image_uri": image_uri,
                "digest": digest,
                "content_hash": tag,
                "build_id": build_id,
                "log_link": log_link,
                "build_context": source_uri,
            }
        )

    # -- pieces -----------------------------------------------------------------------------

    def _check_settings(self) -> None:
        missing = [
            f"{name} ({env})" if env else name
            for name, env, value in (
                ("ecr_repository", "ML_PIPELINES_ECR_REPOSITORY", self.ecr_repository),
                ("codebuild_project", "ML_PIPELINES_CODEBUILD_PROJECT", self.codebuild_project),
                ("context_bucket", "", self.context_bucket),
            )
            if not value
        ]
        if missing:
            raise StepPreconditionFailed(f"container image build: setting(s) not set: {', '.join(missing)}.")

    def _aws_error(self, exc: Exception, action: str) -> StepFailed:
        if isinstance(exc, NoCredentialsError):
            return StepPreconditionFailed(f"{action}: no AWS credentials found; set them (profile, role or env).")
        if not isinstance(exc, ClientError):
            return StepFailed(f"{action} failed: {exc}")
        code = _error_code(exc)
        message = exc.response.get("Error", {}).get("Message", "")
        if code in ("AccessDenied", "AccessDeniedException"):
            return StepPreconditionFailed(f"{action}: access denied ({message}); the step's role needs permission.")
        return StepFailed(f"{action}: {code}: {message}")

    def _repository_uri(self, ecr: Any) -> str:
        try:
            found = ecr.describe_repositories(repositoryNames=[self.repository_name])["repositories"]
        except ClientError as exc:
            if _error_code(exc) == "RepositoryNotFoundException":
                raise StepPreconditionFailed(
                    f"ECR repository {self.ecr_repository!r} (setting ecr_repository, "
                    "ML_PIPELINES_ECR_REPOSITORY) does not exist: create it or fix the setting."
                ) from exc
            raise self._aws_error(exc, f"describe ECR repository {self.ecr_repository!r}") from exc
        except BotoCoreError as exc:
            raise self._aws_error(exc, f"describe ECR repository {self.ecr_repository!r}") from exc
        return found[0]["repositoryUri"]

    def _image_digest(self, ecr: Any, tag: str) -> str | None:
        try:
            details = ecr.describe_images(repositoryName=self.repository_name, imageIds=[{"imageTag": tag}])
        except ClientError as exc:
            if _error_code(exc) == "ImageNotFoundException":
                return None
            raise self._aws_error(exc, f"look up tag {tag} in ECR repository {self.ecr_repository!r}") from exc
        except BotoCoreError as exc:
            raise self._aws_error(exc, f"look up tag {tag} in ECR repository {self.ecr_repository!r}") from exc
        images = details.get("imageDetails", [])
        return images[0]["imageDigest"] if images else None

    def _upload_context(self, plan: ContainerImagePlan) -> str:
        files = build_context_files(plan)
        prefix = self.context_prefix.strip("/")
        key = (
            f"{prefix}/{plan.image_name}/{plan.content_hash}.zip"
            if prefix
            else f"{plan.image_name}/{plan.content_hash}.zip"
        )
        with tempfile.TemporaryDirectory(prefix="image-context-") as tmp:
            archive = write_context_zip(files, Path(tmp) / "context.zip")
            return self.storage.put_file(str(archive), f"s3://{self.context_bucket}/{key}")

    def _start_build(self, codebuild: Any, source_uri: str, repository_uri: str, tag: str) -> dict[str, Any]:
        try:
            return codebuild.start_build(
                projectName=self.codebuild_project,
                sourceTypeOverride="S3",
                sourceLocationOverride=source_uri.removeprefix("s3://"),
                buildspecOverride=BUILDSPEC,
                environmentVariablesOverride=[
                    {"name": "IMAGE_REPO", "value": repository_uri, "type": "PLAINTEXT"},
                    {"name": "IMAGE_TAG", "value": tag, "type": "PLAINTEXT"},
                ],
            )["build"]
        except ClientError as exc:
            if _error_code(exc) == "ResourceNotFoundException":
                raise StepPreconditionFailed(
                    f"CodeBuild project {self.codebuild_project!r} (setting codebuild_project, "
                    f"ML_PIPELINES_CODEBUILD_PROJECT) was not found: create it or fix the setting ({exc})."
                ) from exc
            raise self._aws_error(exc, f"start a build of CodeBuild project {self.codebuild_project!r}") from exc
        except BotoCoreError as exc:
            raise self._aws_error(exc, f"start a build of CodeBuild project {self.codebuild_project!r}") from exc

    def _wait(
        self, codebuild: Any, build: dict[str, Any], log: Callable[[str], None], sleep: Callable[[float], None]
    ) -> dict[str, Any]:
        """Poll until the build is no longer IN_PROGRESS; the wait doubles up to `poll_max_s`."""
        delay = self.poll_initial_s
        phase = build.get("currentPhase")
        while build.get("buildStatus", "IN_PROGRESS") == "IN_PROGRESS":
            sleep(delay)
            delay = min(delay * 2, self.poll_max_s)
            try:
                builds = codebuild.batch_get_builds(ids=[build["id"]])["builds"]
            except (ClientError, BotoCoreError) as exc:
                raise self._aws_error(exc, f"read the status of CodeBuild build {build['id']}") from exc
            if not builds:
                raise StepFailed(f"CodeBuild build {build['id']} is no longer known to CodeBuild.")
            build = builds[0]
            if build.get("currentPhase") != phase:
                phase = build.get("currentPhase")
                log(f"CodeBuild build {build['id']}: {phase}")
        return build

    @staticmethod
    def _failed_phase(build: dict[str, Any]) -> str:
        failed = [p for p in build.get("phases", []) if p.get("phaseStatus") in _FAILED_PHASE_STATUSES]
        return failed[0]["phaseType"] if failed else str(build.get("currentPhase"))

    @staticmethod
    def _phase_reason(build: dict[str, Any]) -> str:
        for phase in build.get("phases", []):
            if phase.get("phaseStatus") in _FAILED_PHASE_STATUSES:
                messages = [c.get("message", "") for c in phase.get("contexts", []) if c.get("message")]
                if messages:
                    return f" ({'; '.join(messages)})"
        return ""

    def _log_link(self, build: dict[str, Any]) -> str:
        """CodeBuild's CloudWatch deep link, else the build's page in the console."""
        deep_link = build.get("logs", {}).get("deepLink")
        if deep_link:
            return deep_link
        region = build.get("arn", "").split(":")[3] if build.get("arn", "").count(":") >= 3 else ""
        region = region or self.region_name or clients.session().region_name or "us-east-1"
        return (
            f"https://{region}.console.aws.amazon.com/codesuite/codebuild/projects/{self.codebuild_project}"
            f"/build/{build['id']}/log?region={region}"
        )
