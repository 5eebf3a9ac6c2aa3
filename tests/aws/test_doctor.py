"""`ml-pipelines doctor --env DEV` on the example project against moto and fakesnow."""

from __future__ import annotations

import io
import json
from pathlib import Path

import boto3
import pytest

from ml_pipelines.cli import main

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": []})


@pytest.fixture
def dev_account(aws_env, snowflake_env, monkeypatch) -> dict[str, str]:
    """What an administrator creates once for DEV, and the settings naming it."""
    s3, iam = boto3.client("s3"), boto3.client("iam")
    for bucket in ("datascience-ml-pipelines-dev", "ml-pipelines-build-dev"):
        s3.create_bucket(Bucket=bucket)
    roles = {
        name: iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"] for name in ("sm", "glue")
    }
    boto3.client("ecr").create_repository(repositoryName="ml-pipelines")
    boto3.client("codebuild").create_project(
        name="ml-pipelines-images",
        source={"type": "S3", "location": "ml-pipelines-build-dev/empty.zip"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0", "computeType": "BUILD_GENERAL1_SMALL", "privilegedMode": True},
        serviceRole=f"arn:aws:iam::{ACCOUNT}:role/codebuild",
    )  # fmt: skip
    settings = {
        "ML_PIPELINES_SAGEMAKER_ROLE_ARN": roles["sm"],
        "ML_PIPELINES_GLUE_ROLE_ARN": roles["glue"],
        "ML_PIPELINES_ECR_REPOSITORY": "ml-pipelines",
        "ML_PIPELINES_CODEBUILD_PROJECT": "ml-pipelines-images",
        "ML_PIPELINES_BUILD_CONTEXT_BUCKET": "ml-pipelines-build-dev",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return settings


def doctor() -> tuple[int, list[str]]:
    out = io.StringIO()
    code = main(["doctor", "--env", "DEV", "--project-dir", str(REPO)], out=out, err=out)
    return code, out.getvalue().splitlines()


def test_everything_in_place_passes(dev_account):
    code, lines = doctor()
    assert code == 0, "\n".join(lines)
    assert lines[-1] == "doctor DEV: every check passed"
    checked = "\n".join(lines)
    for expected in (
        "ok    AWS credentials: account 123456789012",
        "ok    S3 bucket datascience-ml-pipelines-dev: reachable",
        "ok    S3 bucket ml-pipelines-build-dev: reachable (named by ML_PIPELINES_BUILD_CONTEXT_BUCKET)",
        f"ok    IAM role {dev_account['ML_PIPELINES_GLUE_ROLE_ARN']}",
        "ok    ECR repository ml-pipelines",
        "ok    CodeBuild project ml-pipelines-images: aws/codebuild/standard:7.0, privileged",
        "ok    Snowflake connection of max_ds_ContentForecastDaily: account fakesnow, user fake",
    ):
        assert expected in checked


def test_each_missing_piece_is_one_failing_line_with_its_fix(dev_account, monkeypatch):
    boto3.client("s3").delete_bucket(Bucket="datascience-ml-pipelines-dev")
    boto3.client("ecr").delete_repository(repositoryName="ml-pipelines")
    monkeypatch.delenv("ML_PIPELINES_CODEBUILD_PROJECT")
    monkeypatch.delenv("SNOWFLAKE_USER")
    code, lines = doctor()
    assert code == 1
    failed = [line for line in lines if line.startswith("FAIL")]
    assert len(failed) == 4, "\n".join(lines)
    assert failed[0].startswith("FAIL  ML_PIPELINES_CODEBUILD_PROJECT: not set: export ML_PIPELINES_CODEBUILD_PROJECT=")
    assert (
        "FAIL  S3 bucket datascience-ml-pipelines-dev:" in failed[1] and "create it or fix the bucket of" in failed[1]
    )
    assert failed[2].startswith("FAIL  ECR repository ml-pipelines: RepositoryNotFoundException")
    assert failed[3] == "FAIL  Snowflake credentials: not set: SNOWFLAKE_USER (the Snowflake user SQL steps connect as)"
    assert lines[-1] == "doctor DEV: 4 checks failed"


def test_local_needs_no_checks():
    out = io.StringIO()
    assert main(["doctor", "--env", "LOCAL", "--project-dir", str(REPO)], out=out, err=out) == 0
    assert "needs no AWS settings" in out.getvalue()
