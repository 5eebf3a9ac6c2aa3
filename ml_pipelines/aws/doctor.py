"""`ml-pipelines doctor --env DEV`: is this machine ready to run the project's pipelines there?

One `Check` per thing a run needs: each setting, the AWS credentials, each bucket the configs
name for the environment, the IAM roles, the ECR repository, the CodeBuild project and each
Snowflake connection the SQL steps use. Only read calls (STS, S3 HeadBucket, IAM GetRole,
ECR DescribeRepositories, CodeBuild BatchGetProjects, a Snowflake `SELECT 1`): nothing is
created or changed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from ml_pipelines.aws import clients
from ml_pipelines.aws.settings import SETTINGS, snowflake_missing
from ml_pipelines.config.loader import Project

__all__ = ["Check", "run_checks"]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str  # what was found, or what is missing and how to fix it


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code"))
        if code in ("404", "403"):  # HEAD answers carry no message
            return "does not exist (404)" if code == "404" else "access denied (403)"
        return f"{code}: {error.get('Message') or exc}"
    return f"{type(exc).__name__}: {exc}"


def _aws(name: str, call: Callable[[], str], fix: str) -> Check:
    try:
        return Check(name, True, call())
    except (ClientError, BotoCoreError) as exc:
        return Check(name, False, f"{_error_text(exc)}; {fix}")


def project_buckets(project: Project, env: str) -> dict[str, str]:
    """Bucket -> the first step that names it, for every step with a BucketIOConfig."""
    from ml_pipelines.plan.storage_layout import PlanError, model_bucket

    found: dict[str, str] = {}
    for pipeline in project.pipelines:
        for step in pipeline.config.tasks:
            buckets = getattr(step, "BucketIOConfig", None)
            if buckets is None:
                continue
            where = f"{pipeline.pipeline_id}/{step.name}"
            try:
                found.setdefault(model_bucket(buckets, env, where=where), where)
            except PlanError:  # a blank bucket is a config error; `validate` reports it
                continue
    return found


def snowflake_connections(project: Project) -> dict[tuple[tuple[str, str], ...], str]:
    """Each distinct CommonConf connection of the pipelines with SQL steps -> the first pipeline."""
    found: dict[tuple[tuple[str, str], ...], str] = {}
    for pipeline in project.pipelines:
        if any(step.kind.value == "sql" for step in pipeline.config.tasks):
            common = {k: str(v) for k, v in (pipeline.common or {}).items() if isinstance(v, (str, int))}
            found.setdefault(tuple(sorted(common.items())), pipeline.pipeline_id)
    return found


def _snowflake(connection: dict[str, str], pipeline_id: str, environ: Mapping[str, str]) -> Check:
    from ml_pipelines.aws.snowflake_sql import connection_settings
    from ml_pipelines.steps import StepFailed

    name = f"Snowflake connection of {pipeline_id}"
    try:
        from dagster_snowflake import SnowflakeResource

        resource = SnowflakeResource(**connection_settings(connection, environ))
        with resource.get_connection() as conn:
            try:
                conn.cursor().execute("SELECT 1")
            finally:
                conn.close()
    except StepFailed as exc:
        return Check(name, False, str(exc))
    except Exception as exc:  # the connector's errors: shown, never raised
        return Check(name, False, f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
    return Check(name, True, f"account {resource.account}, user {resource.user}")


def run_checks(project: Project, env: str, environ: Mapping[str, str] | None = None) -> Iterator[Check]:
    """The checks of `project` in `env`, in order, each as soon as it is done."""
    environ = os.environ if environ is None else environ
    kinds = {step.kind.value for pipeline in project.pipelines for step in pipeline.config.tasks}
    values = {s.variable: (environ.get(s.variable) or "").strip() or s.default for s in SETTINGS}
    for setting in SETTINGS:
        if setting.kinds & kinds or values[setting.variable]:
            value = values[setting.variable]
            yield Check(
                setting.variable,
                bool(value),
                value or f"not set: export {setting.variable}=... ({setting.purpose})",
            )
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or clients.session().region_name
    yield Check("AWS region", bool(region), region or "not set: export AWS_REGION=<region> (or use a profile with one)")

    try:
        identity = clients.client("sts").get_caller_identity()
    except NoCredentialsError:
        yield Check("AWS credentials", False, "none found: set AWS_PROFILE, or run where a role provides them")
        return  # every later AWS check would fail the same way
    except (ClientError, BotoCoreError) as exc:
        yield Check("AWS credentials", False, _error_text(exc))
        return
    yield Check("AWS credentials", True, f"account {identity.get('Account')}, {identity.get('Arn')}")

    s3 = clients.client("s3")
    buckets = project_buckets(project, env)
    if values["ML_PIPELINES_BUILD_CONTEXT_BUCKET"] and "container_image" in kinds:
        buckets.setdefault(values["ML_PIPELINES_BUILD_CONTEXT_BUCKET"], "ML_PIPELINES_BUILD_CONTEXT_BUCKET")
    for bucket, where in sorted(buckets.items()):
        yield _aws(
            f"S3 bucket {bucket}",
            lambda b=bucket, w=where: (s3.head_bucket(Bucket=b), f"reachable (named by {w})")[1],
            f"create it or fix the bucket of {where}; the role needs s3:ListBucket on it",
        )

    iam = clients.client("iam")
    for variable in ("ML_PIPELINES_SAGEMAKER_ROLE_ARN", "ML_PIPELINES_GLUE_ROLE_ARN"):
        arn = values[variable]
        if arn:
            yield _aws(
                f"IAM role {arn}",
                lambda a=arn: iam.get_role(RoleName=a.rsplit("/", 1)[-1])["Role"]["Arn"],
                f"create the role or fix {variable}",
            )

    repository = values["ML_PIPELINES_ECR_REPOSITORY"]
    if repository:
        host, _, name = repository.rstrip("/").partition("/")
        name = name if name and "." in host else repository
        ecr = clients.client("ecr")
        yield _aws(
            f"ECR repository {name}",
            lambda: ecr.describe_repositories(repositoryNames=[name])["repositories"][0]["repositoryUri"],
            "create it (aws ecr create-repository) or fix ML_PIPELINES_ECR_REPOSITORY",
        )

    project_name = values["ML_PIPELINES_CODEBUILD_PROJECT"]
    if project_name:
        yield _codebuild(project_name)

    if "sql" in kinds:
        missing = snowflake_missing(environ)
        if missing:
            yield Check("Snowflake credentials", False, "not set: " + "; ".join(missing))
        else:
            for connection, pipeline_id in snowflake_connections(project).items():
                yield _snowflake(dict(connection), pipeline_id, environ)


def _codebuild(name: str) -> Check:
    check = f"CodeBuild project {name}"
    try:
        found: dict[str, Any] = clients.client("codebuild").batch_get_projects(names=[name])
    except (ClientError, BotoCoreError) as exc:
        return Check(check, False, _error_text(exc))
    projects = found.get("projects", [])
    if not projects:
        return Check(
            check, False, "not found: create it (privileged mode, Docker) or fix ML_PIPELINES_CODEBUILD_PROJECT"
        )
    environment = projects[0].get("environment", {})
    if not environment.get("privilegedMode"):
        return Check(check, False, "found, but privilegedMode is off: image builds need Docker; turn it on")
    return Check(check, True, f"{environment.get('image', 'found')}, privileged")
