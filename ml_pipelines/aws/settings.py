"""The settings of DEV, BETA and PROD: environment variables, read and checked in one place.

Everything account-specific comes from here; the code holds no account, role or bucket.
`aws_settings_from_env` reports every missing setting at once (`SettingsError`), naming the
variables and what each is for, so the code location fails to load with the whole list
rather than a step failing in the middle of a run. Which settings are required depends on
the step kinds the project's pipelines use: a project without Glue steps needs no Glue role.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass

__all__ = ["SETTINGS", "AwsSettings", "SettingsError", "aws_settings_from_env"]


@dataclass(frozen=True)
class Setting:
    variable: str
    purpose: str
    kinds: frozenset[str]  # required when the project has a step of one of these kinds
    default: str = ""


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "ML_PIPELINES_SAGEMAKER_ROLE_ARN",
        "IAM role the SageMaker Processing jobs of notebook steps run as",
        frozenset({"notebook"}),
    ),
    Setting("ML_PIPELINES_GLUE_ROLE_ARN", "IAM role the Glue jobs run as", frozenset({"glue"})),
    Setting(
        "ML_PIPELINES_ECR_REPOSITORY",
        "ECR repository (name or URI) the notebook images are pushed to and run from",
        frozenset({"container_image", "notebook"}),
    ),
    Setting(
        "ML_PIPELINES_CODEBUILD_PROJECT",
        "CodeBuild project that builds the notebook images (privileged mode, may push to the repository)",
        frozenset({"container_image"}),
    ),
    Setting(
        "ML_PIPELINES_BUILD_CONTEXT_BUCKET",
        "S3 bucket the zipped image build contexts are uploaded to (CodeBuild reads them there)",
        frozenset({"container_image"}),
    ),
    Setting("ML_PIPELINES_GLUE_VERSION", "Glue version of the Glue jobs", frozenset(), default="4.0"),
)


class SettingsError(ValueError):
    """Settings an environment needs are missing; the message lists them all."""


@dataclass(frozen=True)
class AwsSettings:
    env: str
    sagemaker_role_arn: str
    glue_role_arn: str
    ecr_repository: str
    codebuild_project: str
    build_context_bucket: str
    glue_version: str
    region: str | None  # None: boto3 finds none (reported as missing where AWS steps exist)


def _region(environ: Mapping[str, str]) -> str | None:
    from ml_pipelines.aws import clients

    return environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or clients.session().region_name


def snowflake_missing(environ: Mapping[str, str]) -> list[str]:
    """The Snowflake credential variables SQL steps need and the environment lacks."""
    missing = [] if environ.get("SNOWFLAKE_USER") else ["SNOWFLAKE_USER (the Snowflake user SQL steps connect as)"]
    if not (environ.get("SNOWFLAKE_PASSWORD") or environ.get("SNOWFLAKE_PRIVATE_KEY_PATH")):
        missing.append("SNOWFLAKE_PASSWORD or SNOWFLAKE_PRIVATE_KEY_PATH (that user's password or key file)")
    return missing


def aws_settings_from_env(env: str, kinds: Collection[str], environ: Mapping[str, str] | None = None) -> AwsSettings:
    """The settings of `env` (DEV, BETA or PROD) for a project whose steps are of `kinds`;
    SettingsError listing every required variable that is unset."""
    environ = os.environ if environ is None else environ
    kinds = set(kinds)
    values = {s.variable: (environ.get(s.variable) or "").strip() or s.default for s in SETTINGS}
    missing = [f"{s.variable} ({s.purpose})" for s in SETTINGS if s.kinds & kinds and not values[s.variable]]
    region = _region(environ)
    if region is None and kinds - {"external_wait", "python_script", "sql"}:
        missing.append("AWS_REGION (the AWS region of the jobs and buckets; or a profile with a region)")
    if "sql" in kinds:
        missing += snowflake_missing(environ)
    if missing:
        lines = "\n".join(f"  - {item}" for item in missing)
        raise SettingsError(
            f"ML_PIPELINES_ENV={env}: {len(missing)} setting(s) are not set:\n{lines}\n"
            "Set them in the environment of every Dagster process (README: 'Running on AWS'), "
            "or check them with `ml-pipelines doctor --env " + env + "`."
        )
    return AwsSettings(
        env=env,
        sagemaker_role_arn=values["ML_PIPELINES_SAGEMAKER_ROLE_ARN"],
        glue_role_arn=values["ML_PIPELINES_GLUE_ROLE_ARN"],
        ecr_repository=values["ML_PIPELINES_ECR_REPOSITORY"],
        codebuild_project=values["ML_PIPELINES_CODEBUILD_PROJECT"],
        build_context_bucket=values["ML_PIPELINES_BUILD_CONTEXT_BUCKET"],
        glue_version=values["ML_PIPELINES_GLUE_VERSION"],
        region=region,
    )
