"""The example pipeline max_ds_ContentForecastDaily materialized in DEV, as the README says to:
`dagster asset materialize` on the real code location with ML_PIPELINES_ENV=DEV, against the
moto server (S3, ECR, CodeBuild, SageMaker, CloudWatch Logs) and a fakesnow server.

The setup is `make aws-sandbox`'s (tests/aws/sandbox.py). What stands in for AWS (fake_aws.py):
CodeBuild "builds" by putting the tag in ECR; SageMaker runs each Processing job's container entrypoint with papermill and a real kernel
on its S3 inputs, reading the features from S3 with pyarrow. fakesnow cannot read s3:// stages
(DuckDB's httpfs cannot be downloaded here), so its COPY INTO fetches the staged files from
moto first. Then the same partition again: nothing built, nothing uploaded.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
import snowflake.connector
from dagster import DagsterEventType, DagsterInstance, EventRecordsFilter

from tests.aws.fake_aws import fakesnow_reads_s3_from_moto
from tests.aws.sandbox import BUCKET, SETTINGS, TITLES, provision
from tests.processes import dagster_env

REPO = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
PIPELINE = "max_ds_ContentForecastDaily"
PARTITION = "2024-01-05"
STEPS = ("ecr_container_creation", "sagemaker_notebook_job_processing_script",
         "sagemaker_notebook_job_processing_script_v2", "write_to_snowflake")  # fmt: skip


@pytest.fixture
def dev(aws_env, snowflake_env, snowflake_server, fake_sagemaker, fake_codebuild, tmp_path):
    """DEV as `make aws-sandbox` sets it up, and the environment of the Dagster processes."""
    with fakesnow_reads_s3_from_moto():
        provision(snowflake_server)
        env = dagster_env(tmp_path, REPO, "DEV", **SETTINGS)
        dagster_home = Path(env["DAGSTER_HOME"])
        yield {"env": env, "home": dagster_home, "sagemaker": fake_sagemaker, "codebuild": fake_codebuild}


def materialize(env: dict[str, str]) -> None:
    """Run the pipeline's steps for PARTITION; a failing step (which would wait out the config's
    5-minute retry delay) fails the test with the step's error."""
    selection = " or ".join(f'key:"{PIPELINE}/{step}"' for step in STEPS)
    command = [DAGSTER, "asset", "materialize", "-m", "ml_pipelines.definitions", "--select", selection,
               "--partition", PARTITION]  # fmt: skip
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(240, proc.kill)
    watchdog.start()
    lines: list[str] = []
    failures: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip())
        if "STEP_UP_FOR_RETRY" in line or "STEP_FAILURE" in line:
            failures = lines[-40:]
            proc.kill()
    proc.wait()
    watchdog.cancel()
    output = "\n".join(failures or lines[-60:])
    assert proc.returncode == 0 and not failures, output


def materializations(instance: DagsterInstance, run_id: str) -> dict[str, dict[str, Any]]:
    found = {}
    for record in instance.get_event_records(EventRecordsFilter(DagsterEventType.ASSET_MATERIALIZATION)):
        if record.run_id == run_id:
            mat = record.asset_materialization
            found[mat.asset_key.path[-1]] = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    return found


def input_versions(s3: Any) -> dict[str, Any]:
    """Key -> LastModified of every staged input (a re-upload changes it)."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="sagemaker-models-dev/")
    return {o["Key"]: o["LastModified"] for p in pages for o in p.get("Contents", []) if "/output/" not in o["Key"]}


def test_example_pipeline_runs_in_dev_and_an_unchanged_rerun_builds_and_uploads_nothing(dev, snowflake_server):
    materialize(dev["env"])

    with DagsterInstance.from_config(str(dev["home"])) as instance:
        (run,) = instance.get_runs()
        done = materializations(instance, run.run_id)
        logs = [e.user_message for e in instance.all_logs(run.run_id) if e.user_message]
    assert set(done) == set(STEPS)

    # the image: built once by CodeBuild, pushed to ECR with the content hash as tag
    image = done["ecr_container_creation"]
    (build,) = dev["codebuild"].builds
    assert image["reused"] is False and image["build_id"] == build.id
    tags = [i["imageTag"] for i in boto3.client("ecr").list_images(repositoryName="ml-pipelines")["imageIds"]]
    assert tags == [image["content_hash"]]

    # the notebooks: two Processing jobs on that image, in flight at the same time
    sagemaker = dev["sagemaker"]
    assert len(sagemaker.runs) == 2 and sagemaker.max_in_flight == 2
    for step, stem in (("sagemaker_notebook_job_processing_script", "ContentForecast_V1"),
                       ("sagemaker_notebook_job_processing_script_v2", "ContentForecast_V2")):  # fmt: skip
        meta = done[step]
        assert meta["image_uri"].endswith(f"/ml-pipelines:{image['content_hash']}")
        assert meta["output_files"] == [
            f"s3://{BUCKET}/sagemaker-models-dev/Content_Forecast/{stem}/output/{name}"
            for name in (f"{stem}.ipynb", f"forecast_{PARTITION}.csv")
        ]
        assert any(line.startswith(f"[{meta['job_name']}] ") for line in logs)  # CloudWatch lines forwarded

    # the SQL step loaded V1's forecast into Snowflake, with the query tag naming the run
    body = (
        boto3.client("s3")
        .get_object(
            Bucket=BUCKET,
            Key=f"sagemaker-models-dev/Content_Forecast/ContentForecast_V1/output/forecast_{PARTITION}.csv",
        )["Body"]
        .read()
        .decode()
    )
    expected = sorted((r["TITLE_ID"], float(r["PREDICTED_VIEWS"])) for r in csv.DictReader(io.StringIO(body)))
    assert [t for t, _ in expected] == list(TITLES)
    with snowflake.connector.connect(**snowflake_server, database="DATASCIENCE", schema="FORECASTS") as conn:
        rows = (
            conn.cursor()
            .execute(
                f"SELECT TITLE_ID, PREDICTED_VIEWS FROM CONTENT_FORECAST_DAILY WHERE DT = '{PARTITION}' ORDER BY 1"
            )
            .fetchall()
        )
    assert [(t, float(v)) for t, v in rows] == expected
    sql = done["write_to_snowflake"]
    assert f'"dagster_run_id":"{run.run_id}"' in sql["query_tag"] and sql["schema"] == "FORECASTS"

    # the same partition again: the image is reused, no input is uploaded again
    s3 = boto3.client("s3")
    staged = input_versions(s3)
    materialize(dev["env"])
    with DagsterInstance.from_config(str(dev["home"])) as instance:
        again = materializations(instance, instance.get_runs(limit=1)[0].run_id)
    assert again["ecr_container_creation"]["reused"] is True and len(dev["codebuild"].builds) == 1
    assert input_versions(s3) == staged
    assert len(sagemaker.runs) == 4  # a new Dagster run is a new job of each notebook
