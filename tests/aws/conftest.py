"""A moto S3 server on 127.0.0.1 for the session; each test gets fake credentials, the
server as `AWS_ENDPOINT_URL` and an empty state."""

from __future__ import annotations

import logging
import urllib.request

import pytest
from moto.server import ThreadedMotoServer

from .fake_aws import codebuild_pushes_images, sagemaker_runs_containers


@pytest.fixture(scope="session")
def moto_server():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(moto_server, monkeypatch: pytest.MonkeyPatch, tmp_path):
    """boto3's default chain pointed at the moto server, and nothing of the user's AWS setup."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=10)
    return moto_server


@pytest.fixture
def fake_sagemaker(aws_env):
    """Processing jobs run their container (tests/aws/fake_aws.py); options can be set on it."""
    with sagemaker_runs_containers(aws_env) as fake:
        yield fake


@pytest.fixture
def fake_codebuild(aws_env):
    """CodeBuild builds push IMAGE_REPO:IMAGE_TAG to moto's ECR (tests/aws/fake_aws.py)."""
    with codebuild_pushes_images() as fake:
        yield fake
