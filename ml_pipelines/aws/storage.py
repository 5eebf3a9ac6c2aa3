"""`Storage` on S3 through boto3.

Incremental uploads: each object this class writes carries the sha256 of its content in
its user metadata (`x-amz-meta-sha256`). Before uploading, `put_file` reads the object's
head; when the key exists with the same sha256, nothing is uploaded. A sha256 is used
rather than the ETag because the ETag is the MD5 of the content only for single-part
uploads without SSE-KMS (boto3's `upload_file` goes multipart above 8 MB). An object
written by another tool (no sha256 in its metadata) is uploaded again once.

Clients come from `aws/clients.py` (boto3's default chain, one session per process).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from pydantic import Field

from ml_pipelines.aws import clients
from ml_pipelines.config.parameters import split_s3_uri
from ml_pipelines.steps import StepFailed, StepPreconditionFailed, Storage

__all__ = ["SHA256_METADATA_KEY", "S3Storage", "file_sha256"]

SHA256_METADATA_KEY = "sha256"

# Error codes that another attempt will not fix: the bucket, key or permissions must change.
_PRECONDITION_CODES = {"NoSuchBucket", "NoSuchKey", "AccessDenied", "403", "InvalidBucketName", "AllAccessDisabled"}


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as src:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _step_error(exc: Exception, action: str, bucket: str, key: str | None = None) -> StepFailed:
    """The StepFailed (or StepPreconditionFailed) a data scientist reads for a failed S3 call."""
    where = f"s3://{bucket}/{key}" if key is not None else f"bucket {bucket!r}"
    if isinstance(exc, NoCredentialsError):
        return StepPreconditionFailed(
            f"{action} {where}: no AWS credentials found; set them (profile, role or environment)."
        )
    if not isinstance(exc, ClientError):
        return StepFailed(f"{action} {where} failed: {exc}")
    code = str(exc.response.get("Error", {}).get("Code", ""))
    message = exc.response.get("Error", {}).get("Message", "")
    if code == "NoSuchBucket":
        hint = f"bucket {bucket!r} does not exist: create it or fix the bucket in the URI."
    elif code == "NoSuchKey":
        hint = "no object at this key: check the URI, or run the step that writes it first."
    elif code in ("AccessDenied", "403", "AllAccessDisabled"):
        hint = f"access denied: the role running the step needs S3 permission on bucket {bucket!r}."
    else:
        hint = f"{code}: {message}".strip(": ")
    cls = StepPreconditionFailed if code in _PRECONDITION_CODES else StepFailed
    return cls(f"{action} {where}: {hint}")


class S3Storage(Storage):
    """Object storage on S3; uploads skip files whose content is already at their key."""

    region_name: str | None = Field(
        default=None, description="AWS region; None uses boto3's chain (AWS_REGION, profile, ...)."
    )
    endpoint_url: str | None = Field(
        default=None, description="S3 endpoint; None uses boto3's chain (AWS_ENDPOINT_URL, ...)."
    )

    def client(self) -> Any:
        return clients.client("s3", self.region_name, self.endpoint_url)

    def put_file(self, local_path: str, uri: str) -> str:
        """Upload unless the object at `uri` already has this file's sha256; return `uri` either way."""
        self._put(self.client(), local_path, uri)
        return uri

    def put_tree(self, local_dir: str, uri_prefix: str) -> list[str]:
        """Every file under `local_dir`, sorted, at `uri_prefix`/<relative path>; return their URIs
        (uploaded or already current)."""
        base = Path(local_dir)
        if not base.is_dir():
            raise StepPreconditionFailed(f"upload to {uri_prefix}: local directory {local_dir} does not exist.")
        client = self.client()
        prefix = uri_prefix.rstrip("/")
        written = []
        for src in sorted(p for p in base.rglob("*") if p.is_file()):
            uri = f"{prefix}/{src.relative_to(base).as_posix()}"
            self._put(client, str(src), uri)
            written.append(uri)
        return written

    def _current(self, client: Any, bucket: str, key: str, sha256: str) -> bool:
        try:
            head = client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            # HEAD has no body: a missing key and a missing bucket are both a bare 404; the
            # upload that follows reports NoSuchBucket.
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                return False
            raise _step_error(exc, "read the head of", bucket, key) from exc
        except BotoCoreError as exc:
            raise _step_error(exc, "read the head of", bucket, key) from exc
        return head.get("Metadata", {}).get(SHA256_METADATA_KEY) == sha256

    def _put(self, client: Any, local_path: str, uri: str) -> bool:
        """Upload `local_path` to `uri` unless already current; True when it uploaded."""
        bucket, key = split_s3_uri(uri)
        if not key or key.endswith("/"):
            raise StepPreconditionFailed(f"upload {local_path}: {uri} names no object key.")
        try:
            sha256 = file_sha256(local_path)
        except FileNotFoundError as exc:
            raise StepPreconditionFailed(f"upload to {uri}: local file {local_path} does not exist.") from exc
        if self._current(client, bucket, key, sha256):
            return False
        try:
            client.upload_file(local_path, bucket, key, ExtraArgs={"Metadata": {SHA256_METADATA_KEY: sha256}})
        except S3UploadFailedError as exc:
            # raised while handling the ClientError, which stays as its __context__
            cause = exc.__context__ if isinstance(exc.__context__, ClientError) else exc
            raise _step_error(cause, f"upload {local_path} to", bucket, key) from exc
        except (ClientError, BotoCoreError) as exc:
            raise _step_error(exc, f"upload {local_path} to", bucket, key) from exc
        return True

    def list(self, uri_prefix: str) -> list[str]:
        """Objects at the key `uri_prefix` names or under it as a folder (`a/b` lists `a/b` and
        `a/b/...`, not `a/bc`), as LocalStorage does; folder markers (keys ending in `/`) skipped."""
        bucket, key = split_s3_uri(uri_prefix)
        folder = key if not key or key.endswith("/") else key + "/"
        found = []
        try:
            for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
                for obj in page.get("Contents", []):
                    name = obj["Key"]
                    if (name == key or name.startswith(folder)) and not name.endswith("/"):
                        found.append(f"s3://{bucket}/{name}")
        except (ClientError, BotoCoreError) as exc:
            raise _step_error(exc, "list", bucket, key) from exc
        return sorted(found)

    def read_bytes(self, uri: str) -> bytes:
        bucket, key = split_s3_uri(uri)
        try:
            return self.client().get_object(Bucket=bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise _step_error(exc, "read", bucket, key) from exc
