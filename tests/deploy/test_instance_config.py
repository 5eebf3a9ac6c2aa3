"""deploy/dagster.yaml and deploy/workspace.yaml against the rest of the repo: the deployed
queue limits the runs as LOCAL does, and every variable they read is documented."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOYED = REPO / "deploy" / "dagster.yaml"
LOCAL = REPO / "ml_pipelines" / "instance" / "dagster.yaml"
DOC = REPO / "docs" / "deployment.md"


def _env_vars(node) -> set[str]:
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*(_env_vars(value) for value in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_env_vars(value) for value in node)) if node else set()
    return set()


def test_run_limits_are_those_of_the_local_instance():
    """`max_active_runs` holds in every environment: the pools settings that implement it in
    LOCAL's instance config are the deployed instance's too (only the total of runs differs)."""
    deployed, local = yaml.safe_load(DEPLOYED.read_text()), yaml.safe_load(LOCAL.read_text())
    assert deployed["run_coordinator"]["class"] == local["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert deployed["concurrency"]["pools"] == local["concurrency"]["pools"], "concurrency.pools differs from LOCAL's"
    assert deployed["concurrency"]["pools"]["granularity"] == "run"
    assert deployed["concurrency"]["runs"]["max_concurrent_runs"] == 25


def test_the_deployed_instance_is_postgres_ecs_and_s3_with_settings_from_the_environment():
    deployed = yaml.safe_load(DEPLOYED.read_text())
    db = deployed["storage"]["postgres"]["postgres_db"]
    assert db["scheme"] == "postgresql+psycopg2"  # SQLAlchemy 2.1's plain scheme wants psycopg 3
    for field in ("hostname", "port", "username", "password", "db_name"):
        assert set(db[field]) == {"env"}, f"postgres_db.{field} must come from an environment variable"
    assert deployed["run_launcher"]["module"] == "dagster_aws.ecs"
    assert deployed["run_launcher"]["class"] == "EcsRunLauncher"
    assert deployed["compute_logs"]["class"] == "S3ComputeLogManager"
    assert deployed["telemetry"] == {"enabled": False}


def test_every_variable_the_settings_read_is_documented():
    names = _env_vars(yaml.safe_load(DEPLOYED.read_text())) | _env_vars(
        yaml.safe_load((REPO / "deploy" / "workspace.yaml").read_text())
    )
    assert len(names) >= 8
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)`", DOC.read_text(), flags=re.MULTILINE))
    assert names <= documented, f"not in the variables table of {DOC.name}: {sorted(names - documented)}"
