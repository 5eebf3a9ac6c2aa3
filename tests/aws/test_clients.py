"""The AWS clients every backend uses: throttling is retried with backoff, not failed."""

from __future__ import annotations

import boto3
from botocore.awsrequest import AWSResponse
from botocore.retries.standard import ExponentialBackoff
from dagster import build_asset_context

from ml_pipelines.aws import clients
from ml_pipelines.aws.notebook import SageMakerNotebookBackend
from ml_pipelines.aws.storage import S3Storage
from tests.aws.test_sagemaker_notebook import BUCKET, REPO, ROLE, make_plan


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_):
        yield self._body


def throttled() -> AWSResponse:
    """What SageMaker answers over its rate: HTTP 400, a JSON ThrottlingException."""
    body = b'{"__type": "ThrottlingException", "message": "Rate exceeded"}'
    return AWSResponse("https://api.sagemaker", 400, {"x-amzn-requestid": "throttled"}, _Raw(body))


def test_throttled_create_is_retried_with_backoff(aws_env, aws_hooks, monkeypatch):
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    sent: list[str] = []

    def throttle_twice(request, **_):
        sent.append(request.url)
        return throttled() if len(sent) <= 2 else None  # None: send it to the server

    delays: list[float] = []
    original = ExponentialBackoff.delay_amount

    def recorded(self, context):
        delays.append(original(self, context))
        return 0.01  # keep the test fast; the computed delays are checked below

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", recorded)
    aws_hooks("before-send.sagemaker.CreateProcessingJob", throttle_twice)
    backend = SageMakerNotebookBackend(
        role_arn=ROLE, ecr_repository=REPO, storage=S3Storage(), poll_initial_s=0.01, poll_max_s=0.02
    )
    outcome = backend.run(build_asset_context(), make_plan())

    assert len(sent) == 3 and outcome.metadata["job_arn"]
    # throttling backs off on scale 1 s: attempt n waits a random part of 2**n seconds
    assert len(delays) == 2 and 0 < delays[0] <= 1 and 0 < delays[1] <= 2


def test_one_session_per_process_and_standard_retries(aws_env):
    a, b = clients.client("s3"), clients.client("sagemaker")
    assert clients.session() is clients.session()
    assert a.meta.config.retries == {"mode": "standard", "total_max_attempts": clients.MAX_ATTEMPTS}
    assert b.meta.endpoint_url == aws_env  # AWS_ENDPOINT_URL, read by boto3 itself
