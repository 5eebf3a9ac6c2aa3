"""A moto S3 server on 127.0.0.1 for the session; each test gets fake credentials, the
server as `AWS_ENDPOINT_URL` and an empty state."""

from __future__ import annotations

import logging
import sys
import urllib.request

import pytest
from moto.server import ThreadedMotoServer

from .fake_aws import START_FAKESNOW, codebuild_pushes_images, sagemaker_runs_containers


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
def aws_hooks(aws_env):
    """`register(event, handler)`: a botocore event handler on every client the backends make
    during the test (they all come from `aws.clients.session()`); removed after the test."""
    from ml_pipelines.aws import clients

    events = clients.session().events
    registered = []

    def register(event: str, handler) -> None:
        events.register(event, handler)
        registered.append((event, handler))

    yield register
    for event, handler in registered:
        events.unregister(event, handler)


# fakesnow rejects ALTER SESSION; a real Snowflake accepts the QUERY_TAG the backend sets.
QUERY_TAG_NOP = r"^\s*ALTER\s+SESSION\s+SET\s+QUERY_TAG\b.*"


@pytest.fixture(scope="session")
def snowflake_server():
    """A fakesnow server on 127.0.0.1 for the session (one in-memory database shared by its
    connections) that treats `ALTER SESSION SET QUERY_TAG` as a no-op."""
    with START_FAKESNOW() as server:
        sys.modules["fakesnow.server"].shared_fs.nop_regexes = [QUERY_TAG_NOP]
        yield server


@pytest.fixture
def snowflake_env(snowflake_server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """SNOWFLAKE_* as a deployment sets them, pointing at the fakesnow server."""
    values = {
        "SNOWFLAKE_ACCOUNT": snowflake_server["account"],
        "SNOWFLAKE_USER": snowflake_server["user"],
        "SNOWFLAKE_PASSWORD": snowflake_server["password"],
        "SNOWFLAKE_HOST": snowflake_server["host"],
        "SNOWFLAKE_PORT": str(snowflake_server["port"]),
        "SNOWFLAKE_PROTOCOL": snowflake_server["protocol"],
    }
    for name in ("SNOWFLAKE_WAREHOUSE", "SNOWFLAKE_ROLE", "SNOWFLAKE_DATABASE", "SNOWFLAKE_PRIVATE_KEY_PATH"):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


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
