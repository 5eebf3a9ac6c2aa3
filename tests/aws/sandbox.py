"""An AWS + Snowflake stand-in for DEV on this machine, for trying the AWS backends without an
account: `make aws-sandbox` (or `python -m tests.aws.sandbox`).

It starts a moto server (S3, ECR, CodeBuild, SageMaker, Glue, CloudWatch Logs, IAM, STS) and a
fakesnow server on 127.0.0.1, makes them behave like the real services where the example
pipelines need it (tests/aws/fake_aws.py: Processing jobs run their container entrypoint
with papermill, CodeBuild builds push to ECR, COPY INTO reads s3:// stages), creates what an
administrator creates once for DEV (buckets, ECR repository, CodeBuild project, IAM roles,
the Snowflake database, schema and stage), writes a few days of the features the forecast
notebooks read, and writes the environment of the Dagster processes to a file to `source`.
The end-to-end test (test_dev_end_to_end.py) runs on the same setup.

What it does not stand in for: Glue job runs end at once without running the script (moto),
so the features pipeline's Glue step "succeeds" without output; the features are seeded instead.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shlex
import signal
import sys
import threading
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"  # moto's
REGION = "us-east-1"
BUCKET = "datascience-ml-pipelines-dev"  # the DEV bucket of the example configs
BUILD_BUCKET = "ml-pipelines-build-dev"
FEATURES = "viewership/features/daily_title_features"
TITLES = ("T001", "T002", "T003")
FEATURE_DAYS = [f"2024-01-{day:02d}" for day in range(1, 11)]

PIPELINES_KEY = "ml-pipelines"  # the access key id of the Dagster processes
STAND_IN_KEY = "aws-stand-in"  # of the stand-ins and the jobs' containers

# What the Dagster processes need, besides the endpoints (see `environment`).
SETTINGS = {
    "ML_PIPELINES_ENV": "DEV",
    "ML_PIPELINES_SAGEMAKER_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/ml-pipelines-sagemaker",
    "ML_PIPELINES_GLUE_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/ml-pipelines-glue",
    "ML_PIPELINES_ECR_REPOSITORY": "ml-pipelines",
    "ML_PIPELINES_CODEBUILD_PROJECT": "ml-pipelines-images",
    "ML_PIPELINES_BUILD_CONTEXT_BUCKET": BUILD_BUCKET,
}


def environment(moto_url: str, snowflake: Mapping[str, Any]) -> dict[str, str]:
    """The environment variables a DEV deployment sets, pointing at the stand-ins."""
    return {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": PIPELINES_KEY,
        "AWS_SECRET_ACCESS_KEY": "sandbox",
        "AWS_DEFAULT_REGION": REGION,
        **SETTINGS,
        "SNOWFLAKE_ACCOUNT": str(snowflake["account"]),
        "SNOWFLAKE_USER": str(snowflake["user"]),
        "SNOWFLAKE_PASSWORD": str(snowflake["password"]),
        "SNOWFLAKE_HOST": str(snowflake["host"]),
        "SNOWFLAKE_PORT": str(snowflake["port"]),
        "SNOWFLAKE_PROTOCOL": str(snowflake["protocol"]),
    }


def provision(snowflake_server: Mapping[str, Any]) -> None:
    """What an administrator creates once for DEV, and the upstream features (boto3 must
    already point at the moto server)."""
    import boto3
    import pyarrow as pa
    import pyarrow.parquet as pq
    import snowflake.connector

    s3, iam = boto3.client("s3"), boto3.client("iam")
    for bucket in (BUCKET, BUILD_BUCKET):
        s3.create_bucket(Bucket=bucket)
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    for arn in (SETTINGS["ML_PIPELINES_SAGEMAKER_ROLE_ARN"], SETTINGS["ML_PIPELINES_GLUE_ROLE_ARN"]):
        iam.create_role(RoleName=arn.rsplit("/", 1)[1], AssumeRolePolicyDocument=trust)
    boto3.client("ecr").create_repository(repositoryName=SETTINGS["ML_PIPELINES_ECR_REPOSITORY"])
    boto3.client("codebuild").create_project(
        name=SETTINGS["ML_PIPELINES_CODEBUILD_PROJECT"],
        source={"type": "S3", "location": f"{BUILD_BUCKET}/empty.zip"},  # each build overrides it
        artifacts={"type": "NO_ARTIFACTS"},
        environment={"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0",
                     "computeType": "BUILD_GENERAL1_SMALL", "privilegedMode": True},
        serviceRole=f"arn:aws:iam::{ACCOUNT}:role/ml-pipelines-codebuild",
    )  # fmt: skip
    for n, day in enumerate(FEATURE_DAYS, start=1):
        table = pa.table({
            "title_id": list(TITLES), "views": [10.0 * n, 20.0, 5.0],
            "total_minutes": [100.0, 50.0, 7.5], "avg_minutes": [10.0, 2.5, 1.5],
        })  # fmt: skip
        sink = io.BytesIO()
        pq.write_table(table, sink)
        s3.put_object(Bucket=BUCKET, Key=f"{FEATURES}/dt={day}/part-0.parquet", Body=sink.getvalue())
    with snowflake.connector.connect(**snowflake_server) as conn:
        cursor = conn.cursor()
        cursor.execute("CREATE DATABASE IF NOT EXISTS DATASCIENCE")  # CommonConf's database
        cursor.execute("CREATE SCHEMA IF NOT EXISTS DATASCIENCE.FORECASTS")  # the forecast config's schema
        cursor.execute("CREATE SCHEMA IF NOT EXISTS DATASCIENCE.STAGING")  # CI_STAGING of DEV, variables.yml
        cursor.execute(f"CREATE OR REPLACE STAGE DATASCIENCE.STAGING.CI_STAGING_DEV URL = 's3://{BUCKET}/'")


@contextmanager
def sandbox(port: int = 0, snowflake_port: int | None = None, **sagemaker: Any) -> Iterator[dict[str, str]]:
    """Start, patch and provision everything; yield the environment of the Dagster processes.
    Sets the AWS variables in this process too (the fakes call moto through boto3).
    `sagemaker`: options of the fake SageMaker (e.g. `delay_s`, a job's extra running time)."""
    import logging

    from moto.server import ThreadedMotoServer

    from tests.aws.fake_aws import (
        START_FAKESNOW,
        codebuild_pushes_images,
        fakesnow_reads_s3_from_moto,
        sagemaker_runs_containers,
    )

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with ExitStack() as stack:
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        moto.start()
        stack.callback(moto.stop)
        host, bound = moto.get_host_and_port()
        moto_url = f"http://{host}:{bound}"
        # moto keeps its state per process: start from none
        urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"), timeout=10)
        snowflake = stack.enter_context(START_FAKESNOW(port=snowflake_port))
        sys.modules["fakesnow.server"].shared_fs.nop_regexes = [r"^\s*ALTER\s+SESSION\s+SET\s+QUERY_TAG\b.*"]
        env = environment(moto_url, snowflake)
        # the stand-ins (and the containers they run) call moto as another principal than the
        # Dagster processes, so a count of calls can tell them apart (bench/bench_aws.py)
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        os.environ["AWS_ACCESS_KEY_ID"] = STAND_IN_KEY
        stack.enter_context(sagemaker_runs_containers(moto_url, **sagemaker))
        stack.enter_context(codebuild_pushes_images())
        stack.enter_context(fakesnow_reads_s3_from_moto())
        provision(snowflake)
        yield env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="moto + fakesnow standing in for DEV; Ctrl-C stops it.")
    parser.add_argument("--port", type=int, default=5055, help="moto server port (default 5055)")
    parser.add_argument("--snowflake-port", type=int, default=5056, help="fakesnow port (default 5056)")
    parser.add_argument("--env-file", default=str(REPO / ".ml_pipelines" / "aws-sandbox.env"))
    args = parser.parse_args(argv)
    with sandbox(args.port, args.snowflake_port) as env:
        target = Path(args.env_file)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items()))
        print(f"DEV sandbox up: moto {env['AWS_ENDPOINT_URL']}, fakesnow port {env['SNOWFLAKE_PORT']}")
        print(f"In another terminal: source {target}  (then doctor, dagster dev or dagster asset materialize)")
        print("Ctrl-C stops it (state is in memory and goes with it).", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with suppress(KeyboardInterrupt):
            stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
