"""Snowflake SQL backend: a fakesnow server reached through SnowflakeResource and the real
Snowflake connector, the backend called from a materialized asset."""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import snowflake.connector
from dagster import AssetExecutionContext, ExecuteInProcessResult, MaterializeResult, asset, materialize
from snowflake.connector.cursor import SnowflakeCursor

from ml_pipelines.aws.snowflake_sql import SnowflakeSqlBackend, connection_settings
from ml_pipelines.plan.model import RunIdentity, SqlPlan, SqlStatementFile, TimeWindow
from ml_pipelines.steps import StepPreconditionFailed

# The shape of model_configs/common/snowflake_common_config.yml.
COMMON = {"account": "myorg-datascience", "warehouse": "DATASCIENCE_WH", "database": "DATASCIENCE", "role": "R"}
WINDOW = TimeWindow(start=datetime(2024, 1, 1, tzinfo=UTC), end=datetime(2024, 1, 2, tzinfo=UTC))
QUERY_TAG_PREFIX = "ALTER SESSION SET QUERY_TAG = "


@pytest.fixture
def server(snowflake_server: dict[str, Any]) -> dict[str, Any]:
    return snowflake_server


@pytest.fixture()
def env(server: dict[str, Any], snowflake_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Credentials and the fake endpoint as a DEV deployment sets them; database overridden."""
    monkeypatch.setenv("SNOWFLAKE_DATABASE", "ML_TEST")
    with connect(server) as conn:  # the schema exists beforehand, as on Snowflake
        conn.cursor().execute("CREATE SCHEMA IF NOT EXISTS ML_TEST.ANALYTICS")
    return {**snowflake_env, "SNOWFLAKE_DATABASE": "ML_TEST"}


@pytest.fixture()
def executed(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """(connection id, SQL) of every statement any cursor sends."""
    sent: list[tuple[int, str]] = []
    original = SnowflakeCursor.execute

    def execute(self: SnowflakeCursor, command: str, *args: Any, **kwargs: Any) -> Any:
        sent.append((id(self.connection), command))
        return original(self, command, *args, **kwargs)

    monkeypatch.setattr(SnowflakeCursor, "execute", execute)
    return sent


def connect(server: dict[str, Any]) -> Any:
    return snowflake.connector.connect(**server, database="ML_TEST")


def backend(server: dict[str, Any]) -> SnowflakeSqlBackend:
    # fakesnow rejects ALTER SESSION: have it accept the QUERY_TAG statement as a no-op.
    nop = {"nop_regexes": [r"^\s*ALTER\s+SESSION\s+SET\s+QUERY_TAG\b.*"]}
    return SnowflakeSqlBackend(
        additional_connection_args={
            "network_timeout": server["network_timeout"],
            "session_parameters": {**server["session_parameters"], **nop},
        }
    )


def plan(**files: str) -> SqlPlan:
    run = RunIdentity(pipeline_id="demo_model_daily", step_name="write_to_snowflake_sales", env="DEV", window=WINDOW)
    sql_files = tuple(SqlStatementFile(name=n, path=Path(n), text=t) for n, t in files.items())
    return SqlPlan(run=run, schema="analytics", files=sql_files, connection=COMMON)


def run_sql(sql_backend: SnowflakeSqlBackend, sql_plan: SqlPlan) -> ExecuteInProcessResult:
    @asset(required_resource_keys={"sql"})
    def step(context: AssetExecutionContext) -> MaterializeResult:
        return MaterializeResult(metadata=context.resources.sql.run(context, sql_plan).metadata)

    return materialize([step], resources={"sql": sql_backend}, raise_on_error=False)


def metadata(result: ExecuteInProcessResult) -> dict[str, Any]:
    (mat,) = result.asset_materializations_for_node("step")
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


def failure_text(result: ExecuteInProcessResult) -> str:
    (event,) = result.get_step_failure_events()
    error = event.step_failure_data.error
    return error.to_string() if error else ""


CREATE = "-- the table\nCREATE TABLE sales (id INT, region VARCHAR);\n"
INSERT = "INSERT INTO sales VALUES (1, 'north'), (2, 'it''s; south');\nINSERT INTO sales VALUES (3, 'west');\n"


def test_two_files_run_in_order_in_the_configured_schema_with_a_query_tag(
    server: dict[str, Any], env: dict[str, Any], executed: list[tuple[int, str]]
) -> None:
    result = run_sql(backend(server), plan(**{"create.sql": CREATE, "insert.sql": INSERT}))

    assert result.success, failure_text(result)
    meta = metadata(result)
    assert [(s["file"], s["number"], s["statement"].split()[0], s["rowcount"]) for s in meta["statements"]] == [
        ("create.sql", 1, "CREATE", None),
        ("insert.sql", 1, "INSERT", 2),
        ("insert.sql", 2, "INSERT", 1),
    ]
    assert meta["statements_per_file"] == {"create.sql": 1, "insert.sql": 2}
    assert (meta["account"], meta["database"], meta["schema"]) == (server["account"], "ML_TEST", "ANALYTICS")
    assert (meta["warehouse"], meta["role"]) == ("DATASCIENCE_WH", "R")  # from CommonConf
    with connect(server) as conn:
        rows = conn.cursor().execute("SELECT id, region FROM ML_TEST.ANALYTICS.SALES ORDER BY id").fetchall()
    assert rows == [(1, "north"), (2, "it's; south"), (3, "west")]

    # One session: USE SCHEMA, the tag, then the statements, all on the same connection.
    step_conn = next(conn_id for conn_id, sql in executed if sql.startswith("USE SCHEMA"))
    session = [sql for conn_id, sql in executed if conn_id == step_conn]
    assert session[0] == "USE SCHEMA analytics"
    assert session[1].startswith(QUERY_TAG_PREFIX)
    # dagster-snowflake commits at the end (autocommit is on: nothing pending)
    assert [s.split()[0] for s in session[2:]] == ["CREATE", "INSERT", "INSERT", "COMMIT"]
    literal = session[1][len(QUERY_TAG_PREFIX) :]
    tag = json.loads(literal[1:-1].replace("''", "'").replace("\\\\", "\\"))
    assert tag == {
        "pipeline": "demo_model_daily",
        "step": "write_to_snowflake_sales",
        "env": "DEV",
        "window_start": "2024-01-01T00:00:00+00:00",
        "window_end": "2024-01-02T00:00:00+00:00",
        "dagster_run_id": result.run_id,
    }
    assert json.loads(meta["query_tag"]) == tag


def test_failing_statement_fails_the_step_naming_file_and_statement_number(
    server: dict[str, Any], env: dict[str, Any]
) -> None:
    broken = "INSERT INTO sales VALUES (4, 'east');\nINSERT INTO no_such_table VALUES (1);\nDROP TABLE sales;\n"

    result = run_sql(
        backend(server), plan(**{"create.sql": CREATE.replace("TABLE", "OR REPLACE TABLE"), "load.sql": broken})
    )

    assert not result.success
    text = failure_text(result)
    assert "StepFailed" in text
    assert "SQL file load.sql, statement 2 failed" in text
    assert "INSERT INTO no_such_table VALUES (1)" in text
    assert "NO_SUCH_TABLE does not exist" in text
    with connect(server) as conn:  # statement 1 ran, statement 3 did not
        rows = conn.cursor().execute("SELECT id FROM ML_TEST.ANALYTICS.SALES").fetchall()
    assert rows == [(4,)]


@pytest.mark.parametrize("unset", ["SNOWFLAKE_USER", "SNOWFLAKE_PASSWORD"])
def test_missing_credentials_fail_as_precondition_naming_the_variables(
    server: dict[str, Any], env: dict[str, Any], monkeypatch: pytest.MonkeyPatch, unset: str
) -> None:
    monkeypatch.delenv(unset)

    result = run_sql(backend(server), plan(**{"create.sql": CREATE}))

    assert not result.success
    text = failure_text(result)
    assert "StepPreconditionFailed" in text
    assert "Snowflake credentials are not set" in text
    assert unset in text.split("are not set:")[1].split("(")[0]


def test_connection_settings_from_common_conf_and_environment(tmp_path: Path) -> None:
    key = tmp_path / "rsa_key.p8"
    key.write_text("not read here")
    env = {
        "SNOWFLAKE_USER": "svc",
        "SNOWFLAKE_PRIVATE_KEY_PATH": str(key),
        "SNOWFLAKE_ROLE": "OTHER_ROLE",
        "SNOWFLAKE_HOST": "localhost",
        "SNOWFLAKE_PORT": "8443",
        "SNOWFLAKE_PROTOCOL": "https",
    }

    settings = connection_settings(COMMON, env, {"login_timeout": 5, "port": 1})

    assert settings == {
        "account": "myorg-datascience",
        "warehouse": "DATASCIENCE_WH",
        "database": "DATASCIENCE",
        "role": "OTHER_ROLE",
        "user": "svc",
        "private_key_path": str(key),
        "additional_snowflake_connection_args": {
            "login_timeout": 5,
            "host": "localhost",
            "port": 8443,
            "protocol": "https",
        },
    }
    with pytest.raises(StepPreconditionFailed, match="SNOWFLAKE_PRIVATE_KEY_PATH: no such file"):
        connection_settings(COMMON, {**env, "SNOWFLAKE_PRIVATE_KEY_PATH": str(tmp_path / "missing.p8")})
    with pytest.raises(StepPreconditionFailed, match="SNOWFLAKE_ACCOUNT"):
        connection_settings({}, {"SNOWFLAKE_USER": "svc", "SNOWFLAKE_PASSWORD": "pw"})
