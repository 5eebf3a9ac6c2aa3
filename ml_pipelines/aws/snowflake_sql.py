"""SQL steps on Snowflake (DEV, BETA, PROD), through dagster-snowflake's `SnowflakeResource`.

Connection: account, warehouse, database and role from the config's `CommonConf`
(`plan.connection`), each overridden by `SNOWFLAKE_ACCOUNT`, `SNOWFLAKE_WAREHOUSE`,
`SNOWFLAKE_DATABASE`, `SNOWFLAKE_ROLE`. Credentials only from the environment: `SNOWFLAKE_USER`
with `SNOWFLAKE_PASSWORD` or `SNOWFLAKE_PRIVATE_KEY_PATH` (+ `SNOWFLAKE_PRIVATE_KEY_PASSWORD`).
`SNOWFLAKE_HOST`, `SNOWFLAKE_PORT`, `SNOWFLAKE_PROTOCOL` point the connector at another endpoint.

A step opens one session: `USE SCHEMA <the config's schema>`, `ALTER SESSION SET QUERY_TAG` to a
JSON object naming the pipeline, step, env, partition window and Dagster run id (so query
history and costs trace back to the run), then each file's statements in order, split as the
LOCAL warehouse splits them. Nothing is created: the database and schema must exist.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from ml_pipelines.local.warehouse import split_sql
from ml_pipelines.plan.model import SqlPlan
from ml_pipelines.steps import SqlBackend, StepFailed, StepOutcome, StepPreconditionFailed

_STATEMENT_CHARS = 300
_SETTINGS = ("account", "warehouse", "database", "role")
_ENDPOINT = {"SNOWFLAKE_HOST": "host", "SNOWFLAKE_PORT": "port", "SNOWFLAKE_PROTOCOL": "protocol"}


def _short(sql: str) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= _STATEMENT_CHARS else flat[: _STATEMENT_CHARS - 3] + "..."


def _ident(name: str) -> str:
    """A schema name as SQL: a plain (optionally db-qualified) identifier as is, else quoted."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?", name):
        return name
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    """A Snowflake single-quoted string literal (backslash is an escape character there)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def query_tag(plan: SqlPlan, run_id: str) -> str:
    """The session's QUERY_TAG: JSON naming the pipeline, step, env, window and Dagster run."""
    window = plan.run.window
    return json.dumps(
        {
            "pipeline": plan.run.pipeline_id,
            "step": plan.run.step_name,
            "env": plan.run.env,
            "window_start": window.start.isoformat() if window else None,
            "window_end": window.end.isoformat() if window else None,
            "dagster_run_id": run_id,
        },
        separators=(",", ":"),
    )


def connection_settings(
    connection: Mapping[str, Any], env: Mapping[str, str], extra_args: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """`SnowflakeResource` fields from CommonConf and the environment; StepPreconditionFailed
    naming the variables when the account or the credentials are missing."""
    settings: dict[str, Any] = {}
    for key in _SETTINGS:
        value = env.get(f"SNOWFLAKE_{key.upper()}") or connection.get(key)
        if value:
            settings[key] = str(value)
    user = env.get("SNOWFLAKE_USER")
    password = env.get("SNOWFLAKE_PASSWORD")
    key_path = env.get("SNOWFLAKE_PRIVATE_KEY_PATH")
    if not user or not (password or key_path):
        missing = [] if user else ["SNOWFLAKE_USER"]
        if not (password or key_path):
            missing.append("SNOWFLAKE_PASSWORD or SNOWFLAKE_PRIVATE_KEY_PATH")
        raise StepPreconditionFailed(
            f"Snowflake credentials are not set: {', '.join(missing)} "
            "(SNOWFLAKE_USER with SNOWFLAKE_PASSWORD or SNOWFLAKE_PRIVATE_KEY_PATH)"
        )
    if "account" not in settings:
        raise StepPreconditionFailed("no Snowflake account: set CommonConf account or SNOWFLAKE_ACCOUNT")
    settings["user"] = user
    if password:
        settings["password"] = password
    else:
        assert key_path is not None
        if not Path(key_path).is_file():
            raise StepPreconditionFailed(f"SNOWFLAKE_PRIVATE_KEY_PATH: no such file: {key_path}")
        settings["private_key_path"] = key_path
        if env.get("SNOWFLAKE_PRIVATE_KEY_PASSWORD"):
            settings["private_key_password"] = env["SNOWFLAKE_PRIVATE_KEY_PASSWORD"]
    args: dict[str, Any] = dict(extra_args or {})
    for var, arg in _ENDPOINT.items():
        if env.get(var):
            args[arg] = int(env[var]) if arg == "port" else env[var]
    if args:
        settings["additional_snowflake_connection_args"] = args
    return settings


def _rowcount(cursor: Any, statement: str) -> int | None:
    """Rows a DML statement affected, rows a COPY loaded; None for anything else."""
    from sqlglot import exp

    from ml_pipelines.local.snowflake_sql import parse

    expr = parse(statement)
    if isinstance(expr, (exp.Insert, exp.Merge, exp.Update, exp.Delete)):
        return cursor.rowcount
    if isinstance(expr, exp.Copy):
        names = [d.name.lower() for d in cursor.description or []]
        if "rows_loaded" in names:
            i = names.index("rows_loaded")
            return sum(int(row[i] or 0) for row in cursor.fetchall())
    return None


class SnowflakeSqlBackend(SqlBackend):
    """Runs SQL steps on Snowflake, one session per step, queries tagged with the run."""

    additional_connection_args: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra snowflake.connector.connect arguments (SNOWFLAKE_HOST/PORT/PROTOCOL override these).",
    )

    def snowflake_resource(self, plan: SqlPlan, env: Mapping[str, str] | None = None) -> Any:
        from dagster_snowflake import SnowflakeResource  # imported here: it takes seconds

        settings = connection_settings(
            plan.connection, os.environ if env is None else env, self.additional_connection_args
        )
        return SnowflakeResource(**settings)

    def run(self, context: Any, plan: SqlPlan) -> StepOutcome:
        import snowflake.connector.errors

        start = time.monotonic()
        log = context.log
        resource = self.snowflake_resource(plan)
        tag = query_tag(plan, context.run_id)
        setup = [f"USE SCHEMA {_ident(plan.schema)}"] if plan.schema else []
        setup.append(f"ALTER SESSION SET QUERY_TAG = {_literal(tag)}")
        statements: list[dict[str, Any]] = []
        try:
            with resource.get_connection() as conn:
                try:
                    database, schema = self._run_session(conn, setup, plan, statements, log)
                finally:
                    conn.close()  # dagster-snowflake closes it only when the block succeeds
        except snowflake.connector.errors.Error as e:  # statement errors are StepFailed already
            raise StepFailed(
                f"Snowflake session failed (account {resource.account!r}, user {resource.user!r}): {e}"
            ) from None
        return StepOutcome(
            metadata={
                "account": resource.account,
                "warehouse": resource.warehouse,
                "database": database or resource.database,
                "schema": schema or plan.schema,
                "role": resource.role,
                "query_tag": tag,
                "statements": statements,
                "statements_per_file": {f.name: sum(s["file"] == f.name for s in statements) for f in plan.files},
                "duration_s": round(time.monotonic() - start, 3),
            }
        )

    def _run_session(
        self, conn: Any, setup: list[str], plan: SqlPlan, statements: list[dict[str, Any]], log: Any
    ) -> tuple[str | None, str | None]:
        """Setup, then each file's statements in order (appended to `statements`); the session's
        database and schema."""
        cursor = conn.cursor()
        for sql in setup:
            self._execute(cursor, "session setup", 0, sql)
        for sql_file in plan.files:
            for number, statement in enumerate(split_sql(sql_file.text), start=1):
                self._execute(cursor, sql_file.name, number, statement)
                rowcount = _rowcount(cursor, statement)
                statements.append(
                    {
                        "file": sql_file.name,
                        "number": number,
                        "statement": _short(statement),
                        "rowcount": rowcount,
                        "query_id": cursor.sfqid,
                    }
                )
                log.info(
                    f"{sql_file.name} #{number}: {_short(statement)} -> "
                    f"{'ok' if rowcount is None else f'{rowcount} rows'} (query id {cursor.sfqid})"
                )
        return conn.database, conn.schema

    @staticmethod
    def _execute(cursor: Any, file_name: str, number: int, sql: str) -> None:
        import snowflake.connector.errors

        try:
            cursor.execute(sql)
        except snowflake.connector.errors.Error as e:
            where = f"SQL file {file_name}, statement {number}" if number else f"Snowflake {file_name}"
            raise StepFailed(f"{where} failed:\n{_short(sql)}\nError: {e}") from None


__all__ = ["SnowflakeSqlBackend", "connection_settings", "query_tag"]
