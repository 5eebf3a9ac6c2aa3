"""A moto S3 server on 127.0.0.1 for the session; each test gets fake credentials, the
server as `AWS_ENDPOINT_URL` and an empty state."""

from __future__ import annotations

import logging
import urllib.request

import pytest
from moto.server import ThreadedMotoServer


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
