"""DEV/BETA/PROD settings: every missing one reported at once, by the kinds a project uses."""

from __future__ import annotations

import pytest

from ml_pipelines.aws.settings import SettingsError, aws_settings_from_env
from ml_pipelines.environment import build_resources, settings_from_env
from ml_pipelines.steps.registry import RESOURCE_KEYS

ALL_KINDS = {"container_image", "notebook", "sql", "glue", "python_script", "external_wait"}
FULL = {
    "ML_PIPELINES_SAGEMAKER_ROLE_ARN": "arn:aws:iam::123456789012:role/sm",
    "ML_PIPELINES_GLUE_ROLE_ARN": "arn:aws:iam::123456789012:role/glue",
    "ML_PIPELINES_ECR_REPOSITORY": "ml-pipelines",
    "ML_PIPELINES_CODEBUILD_PROJECT": "ml-pipelines-images",
    "ML_PIPELINES_BUILD_CONTEXT_BUCKET": "ml-pipelines-build",
    "AWS_REGION": "eu-west-1",
    "SNOWFLAKE_USER": "svc",
    "SNOWFLAKE_PASSWORD": "pw",
}


def test_every_missing_setting_is_named_at_once():
    with pytest.raises(SettingsError) as error:
        aws_settings_from_env("DEV", ALL_KINDS, {"AWS_REGION": "eu-west-1"})
    message = str(error.value)
    assert message.startswith("ML_PIPELINES_ENV=DEV: 7 setting(s) are not set:")
    for name in (*[k for k in FULL if k != "AWS_REGION"], "SNOWFLAKE_PRIVATE_KEY_PATH"):
        assert name in message
    assert "ml-pipelines doctor --env DEV" in message


def test_required_settings_follow_the_step_kinds():
    sql_only = {"SNOWFLAKE_USER": "svc", "SNOWFLAKE_PRIVATE_KEY_PATH": "/keys/svc.p8"}
    assert aws_settings_from_env("PROD", {"sql", "python_script"}, sql_only).glue_role_arn == ""
    with pytest.raises(SettingsError, match="ML_PIPELINES_GLUE_ROLE_ARN") as error:
        aws_settings_from_env("BETA", {"glue"}, {"AWS_REGION": "eu-west-1"})
    assert "SAGEMAKER" not in str(error.value) and "SNOWFLAKE" not in str(error.value)


def test_glue_version_defaults_to_4_and_can_be_set():
    assert aws_settings_from_env("DEV", ALL_KINDS, FULL).glue_version == "4.0"
    assert aws_settings_from_env("DEV", ALL_KINDS, {**FULL, "ML_PIPELINES_GLUE_VERSION": "5.0"}).glue_version == "5.0"


def test_aws_environment_binds_every_step_interface(monkeypatch, tmp_path):
    for name, value in FULL.items():
        monkeypatch.setenv(name, value)
    resources = build_resources(settings_from_env(tmp_path, env="DEV"), {}, ALL_KINDS)
    assert set(RESOURCE_KEYS) <= set(resources)
    assert type(resources["notebooks"]).__name__ == "SageMakerNotebookBackend"
    assert resources["notebooks"].ecr_repository == "ml-pipelines"
    assert type(resources["python_scripts"]).__name__ == "LocalPythonScripts"
