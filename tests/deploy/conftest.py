"""The deployed instance (deploy/dagster.yaml) on this machine: a real Postgres server the
session starts, moto on 127.0.0.1 for S3 and ECS (tests/aws/conftest.py's fixtures), and the
instance's environment variables pointed at them."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from tests.aws.conftest import aws_env, moto_server  # noqa: F401  (fixtures used here)

from .postgres import PostgresServer, postgres_server, unavailable_reason

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPUTE_LOGS_BUCKET = "ml-pipelines-compute-logs"


@pytest.fixture(scope="session")
def postgres() -> PostgresServer:
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"no Postgres server: {reason}")
    with postgres_server() as server:
        yield server


@dataclass(frozen=True)
class DeployedInstance:
    dagster_home: Path
    env: dict[str, str]  # the instance's settings, as the task definitions set them
    postgres: PostgresServer
    db_name: str

    def connect(self):
        return self.postgres.connect(self.db_name)


@pytest.fixture
def deployed_instance(postgres, aws_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DeployedInstance:  # noqa: F811
    """$DAGSTER_HOME holding deploy/dagster.yaml, with every variable it reads set in this
    process: a new database of the Postgres server, a compute-log bucket in moto."""
    db_name = postgres.create_database()
    boto3.client("s3").create_bucket(Bucket=COMPUTE_LOGS_BUCKET)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    env = {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": postgres.host,
        "DAGSTER_PG_PORT": str(postgres.port),
        "DAGSTER_PG_USERNAME": postgres.user,
        "DAGSTER_PG_PASSWORD": "not-checked-by-trust-auth",
        "DAGSTER_PG_DB": db_name,
        "DAGSTER_COMPUTE_LOGS_BUCKET": COMPUTE_LOGS_BUCKET,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return DeployedInstance(dagster_home=home, env=env, postgres=postgres, db_name=db_name)
