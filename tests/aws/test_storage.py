"""S3Storage over real HTTP against a moto server."""

from __future__ import annotations

import hashlib

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.backends import get_backend
from moto.core import DEFAULT_ACCOUNT_ID

from ml_pipelines.aws.storage import S3Storage, _step_error
from ml_pipelines.steps import StepFailed, StepPreconditionFailed

BUCKET = "ml-bucket"


@pytest.fixture
def s3(aws_env):
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def calls(aws_hooks) -> list[str]:
    """The S3 operations every S3Storage client sends, in order."""
    seen: list[str] = []
    aws_hooks("before-call.s3", lambda model, **_: seen.append(model.name))
    return seen


def _uploads(calls: list[str]) -> int:
    return sum(name in ("PutObject", "CreateMultipartUpload") for name in calls)


def test_client_follows_aws_endpoint_url(aws_env):
    assert S3Storage().client().meta.endpoint_url == aws_env


def test_round_trip(s3, tmp_path):
    storage = S3Storage()
    one = tmp_path / "one.txt"
    one.write_bytes(b"first")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.csv").write_bytes(b"a,b\n1,2\n")
    (tree / "sub" / "b.bin").write_bytes(bytes(range(256)))

    assert storage.put_file(str(one), f"s3://{BUCKET}/files/one.txt") == f"s3://{BUCKET}/files/one.txt"
    written = storage.put_tree(str(tree), f"s3://{BUCKET}/tree/")
    assert written == [f"s3://{BUCKET}/tree/a.csv", f"s3://{BUCKET}/tree/sub/b.bin"]

    assert storage.list(f"s3://{BUCKET}") == [f"s3://{BUCKET}/files/one.txt", *written]
    assert storage.list(f"s3://{BUCKET}/tree") == written
    assert storage.list(f"s3://{BUCKET}/tree/sub/b.bin") == [f"s3://{BUCKET}/tree/sub/b.bin"]
    assert storage.list(f"s3://{BUCKET}/nothing-here") == []
    assert storage.read_bytes(f"s3://{BUCKET}/files/one.txt") == b"first"
    assert storage.read_bytes(f"s3://{BUCKET}/tree/sub/b.bin") == bytes(range(256))
    head = s3.head_object(Bucket=BUCKET, Key="tree/a.csv")
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-meta-sha256"] == hashlib.sha256(b"a,b\n1,2\n").hexdigest()


def test_list_is_by_folder_not_by_text_prefix(s3):
    for key in ("a/b", "a/b/c", "a/bc", "a/b/"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    assert S3Storage().list(f"s3://{BUCKET}/a/b") == [f"s3://{BUCKET}/a/b", f"s3://{BUCKET}/a/b/c"]
    assert S3Storage().list(f"s3://{BUCKET}/a/b/") == [f"s3://{BUCKET}/a/b/c"]


def test_unchanged_file_is_not_uploaded_again(s3, tmp_path, calls):
    storage = S3Storage()
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "x.txt").write_bytes(b"x")
    (tree / "y.txt").write_bytes(b"y")

    storage.put_tree(str(tree), f"s3://{BUCKET}/t")
    assert _uploads(calls) == 2
    calls.clear()
    assert storage.put_tree(str(tree), f"s3://{BUCKET}/t") == [f"s3://{BUCKET}/t/x.txt", f"s3://{BUCKET}/t/y.txt"]
    assert storage.put_file(str(tree / "x.txt"), f"s3://{BUCKET}/t/x.txt") == f"s3://{BUCKET}/t/x.txt"
    assert _uploads(calls) == 0
    assert calls.count("HeadObject") == 3


def test_changed_file_is_uploaded(s3, tmp_path, calls):
    storage = S3Storage()
    src = tmp_path / "x.txt"
    src.write_bytes(b"old")
    storage.put_file(str(src), f"s3://{BUCKET}/x.txt")
    src.write_bytes(b"new")
    calls.clear()
    storage.put_file(str(src), f"s3://{BUCKET}/x.txt")
    assert _uploads(calls) == 1
    assert storage.read_bytes(f"s3://{BUCKET}/x.txt") == b"new"


def test_object_without_sha256_is_uploaded_once(s3, tmp_path, calls):
    """Same bytes written by another tool carry no sha256: one upload, then skipped."""
    s3.put_object(Bucket=BUCKET, Key="x.txt", Body=b"same")
    src = tmp_path / "x.txt"
    src.write_bytes(b"same")
    S3Storage().put_file(str(src), f"s3://{BUCKET}/x.txt")
    S3Storage().put_file(str(src), f"s3://{BUCKET}/x.txt")
    assert _uploads(calls) == 1


def test_missing_bucket_is_a_precondition_failure(aws_env, tmp_path):
    storage = S3Storage()
    src = tmp_path / "x.txt"
    src.write_bytes(b"x")
    for call in (
        lambda: storage.put_file(str(src), "s3://no-such-bucket/k/x.txt"),
        lambda: storage.list("s3://no-such-bucket/k"),
        lambda: storage.read_bytes("s3://no-such-bucket/k/x.txt"),
    ):
        with pytest.raises(StepPreconditionFailed, match="bucket 'no-such-bucket' does not exist: create it"):
            call()


def test_missing_key_and_missing_local_file(s3, tmp_path):
    with pytest.raises(StepPreconditionFailed, match=rf"read s3://{BUCKET}/absent\.txt: no object at this key"):
        S3Storage().read_bytes(f"s3://{BUCKET}/absent.txt")
    with pytest.raises(StepPreconditionFailed, match="local file .*nope.txt does not exist"):
        S3Storage().put_file(str(tmp_path / "nope.txt"), f"s3://{BUCKET}/nope.txt")


def test_access_denied_and_other_errors_map_to_step_errors():
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "PutObject")
    err = _step_error(denied, "upload f to", "prod-bucket", "k")
    assert isinstance(err, StepPreconditionFailed)
    assert "s3://prod-bucket/k" in str(err) and "needs S3 permission on bucket 'prod-bucket'" in str(err)
    slow = ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "PutObject")
    err = _step_error(slow, "upload f to", "b", "k")
    assert type(err) is StepFailed and "SlowDown: Please reduce your request rate." in str(err)


def test_list_paginates_past_1000_keys(s3, calls):
    backend = get_backend("s3")[DEFAULT_ACCOUNT_ID]["global"]
    for i in range(1205):
        backend.put_object(BUCKET, f"many/{i:05d}.txt", b"")
    backend.put_object(BUCKET, "other.txt", b"")
    listed = S3Storage().list(f"s3://{BUCKET}/many")
    assert listed == [f"s3://{BUCKET}/many/{i:05d}.txt" for i in range(1205)]
    assert calls.count("ListObjectsV2") == 2
