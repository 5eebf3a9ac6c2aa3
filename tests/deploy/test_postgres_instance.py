"""A pipeline runs on the deployed instance settings (deploy/dagster.yaml): Postgres storage
through dagster-postgres, every connection setting from DAGSTER_PG_* variables, compute logs
in S3 (moto). `dagster asset materialize` on the real code location (the run in its process,
each step in its own), then the run, its events and the materialization are read back from
the Postgres server, by SQL and through a new instance."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus

from tests.factory.tiny_project import PIPELINE_ID, write_tiny_project

from .conftest import COMPUTE_LOGS_BUCKET

DAGSTER = str(Path(sys.executable).with_name("dagster"))
PARTITION = "2024-01-05"
STEP_KEY = AssetKey([PIPELINE_ID, "python_script_echo"])


def test_pipeline_runs_on_postgres(deployed_instance, tmp_path: Path):
    project = write_tiny_project(tmp_path / "project")
    env = {
        **os.environ,
        "ML_PIPELINES_PROJECT_DIR": str(project),
        "ML_PIPELINES_HOME": str(tmp_path / "home"),
        "ML_PIPELINES_ENV": "DEV",  # a Python-script project needs no AWS setting
        "ML_PIPELINES_STRICT": "1",
    }
    env.pop("ML_PIPELINES_STORAGE_ROOT", None)
    command = [DAGSTER, "asset", "materialize", "-m", "ml_pipelines.definitions"]
    command += ["--select", f"group:{PIPELINE_ID}", "--partition", PARTITION]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    # In Postgres, by SQL: the run and its events.
    with deployed_instance.connect() as conn, conn.cursor() as cursor:
        cursor.execute("SELECT run_id, status FROM runs")
        runs = cursor.fetchall()
        assert [status for _, status in runs] == ["SUCCESS"]
        run_id = runs[0][0]
        cursor.execute("SELECT dagster_event_type FROM event_logs WHERE run_id = %s", (run_id,))
        events = {row[0] for row in cursor.fetchall()}
    expected = ("RUN_START", "STEP_START", "STEP_SUCCESS", "ASSET_MATERIALIZATION", "RUN_SUCCESS")
    assert {DagsterEventType[name].value for name in expected} <= events

    # Through a new instance made from the same settings (what the webserver does).
    instance = DagsterInstance.get()
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        run = instance.get_run_by_id(run_id)
        assert run.status == DagsterRunStatus.SUCCESS
        assert run.tags["dagster/partition"] == PARTITION
        records = instance.fetch_materializations(STEP_KEY, limit=10).records
        assert [(r.run_id, r.partition_key) for r in records] == [(run_id, PARTITION)]
        logs = "\n".join(e.user_message for e in instance.all_logs(run_id))
        assert "echo dt=2024-01-05" in logs
    finally:
        instance.dispose()

    # The step's output went to the compute-log bucket.
    listed = boto3.client("s3").list_objects_v2(Bucket=COMPUTE_LOGS_BUCKET, Prefix="ml-pipelines/compute-logs/")
    keys = [obj["Key"] for obj in listed.get("Contents", [])]
    assert any(key.endswith((".out", ".err")) for key in keys), keys
