"""LOCAL Snowflake SQL steps: an embedded Snowflake-compatible warehouse (fakesnow + DuckDB).

Each step starts a fakesnow HTTP server in a child process and talks to it through
`dagster_snowflake.SnowflakeResource` and the real Snowflake connector (host/port/protocol in
`additional_snowflake_connection_args`): the AWS backend only swaps the resource config.

- Persistence: the server shares one DuckDB instance across its sessions, with each database
  in `<home>/warehouse/<DATABASE>.db` (fakesnow's `server()` only offers a per-session
  `FAKESNOW_DB_PATH`, and a second session on the same file fails with "Unique file handle
  conflict", so the child sets `fakesnow.server.shared_fs`; fakesnow is pinned). Tables survive
  restarts; stages and file formats live only as long as the server (one step).
- A file lock on `<home>/warehouse` serialises steps (one server per database file). The server
  process takes it before opening the database and keeps it until it has closed it, so a step
  does not wait for the server's shutdown (~1 s): the next server waits for the lock instead.
- Start-up: the server process imports fakesnow first (~2-3 s), then opens the database when
  told to. A run whose asset selection has a SQL step (`write_to_snowflake*`) starts that process
  when its resources are set up, so the imports overlap the steps before the SQL step.
- Before the plan: `CREATE DATABASE/SCHEMA IF NOT EXISTS` + `USE`, and each configured stage
  as an external stage over the local mirror of its s3 URI (`URL='file:///<root>/<bucket>/<key>/'`).
- COPY translation: fakesnow lists only the direct children of `@stage/<dir>`, loads nothing
  for `@stage/<file>` or a name prefix, and rejects `PATTERN`. For a configured stage without
  `FILES=`, the backend lists the files itself with Snowflake's semantics (every file whose
  path below the stage starts with the given prefix, at any depth; a PATTERN regex must match
  the whole path, below the stage or below the bucket; local dot-files such as Spark's .crc
  checksums skipped) and runs `COPY ... FROM @stage FILES=(...)`.
  No matching file: the COPY is not sent (Snowflake: "0 files processed").
  As in Snowflake, files already loaded into a table are skipped by later COPYs (load history,
  kept in the database file) unless `FORCE=TRUE`.
- `CREATE TABLE IF NOT EXISTS` on an existing table is not sent (a no-op in Snowflake):
  fakesnow would clear that table's load history, so the next COPY would load files again.
- `ALTER SESSION SET QUERY_TAG` is accepted as a no-op (fakesnow rejects ALTER SESSION).
"""

from __future__ import annotations

import io
import json
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster import InitResourceContext
from pydantic import Field, PrivateAttr

from ml_pipelines.config.schema import StepKind, step_kind_of
from ml_pipelines.local import procs
from ml_pipelines.local.storage import LocalStorage, s3_to_local
from ml_pipelines.plan.model import SqlPlan
from ml_pipelines.steps import SqlBackend, StepFailed, StepOutcome

_SERVER_START_TIMEOUT_S = 120
_SERVER_LOG = "server.log"
_LOCK_FILE = "warehouse.lock"
_STATEMENT_CHARS = 300
_NOP_REGEXES = [r"^\s*ALTER\s+SESSION\s+(UN)?SET\s+QUERY_TAG\b.*"]

# Runs in the child: imports, says so, and waits for a line on stdin (EOF: not needed, exit).
# Then takes the warehouse lock, sends its stderr to server.log, and runs one shared, persisted
# FakeSnow behind fakesnow's server, with every existing database attached (as in Snowflake, all
# are visible to a new session); prints the connection kwargs, serves until stdin closes (the
# parent is done or died), closes DuckDB and only then releases the lock.
_SERVER_SCRIPT = r"""
import importlib, json, os, pathlib, sys
from fakesnow import server as serve  # the function, before the same-named module shadows it
from fakesnow.instance import FakeSnow
from filelock import FileLock, Timeout
app = importlib.import_module("fakesnow.server")
print(json.dumps({"imported": True}), flush=True)
if not sys.stdin.readline().strip():
    sys.exit(0)
db_dir, log_file = pathlib.Path(sys.argv[1]), sys.argv[2]
lock = FileLock(str(db_dir / sys.argv[3]))
try:
    lock.acquire(timeout=0)
except Timeout:
    print(json.dumps({"waiting": lock.lock_file}), flush=True)
    lock.acquire()
sys.stderr.flush()
os.dup2(os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 2)
app.shared_fs = FakeSnow(db_path=str(db_dir))
for db_file in sorted(db_dir.glob("*.db")):  # attach what earlier runs created
    app.shared_fs.connect(db_file.stem).close()
with serve(host="127.0.0.1") as kwargs:
    print(json.dumps({"server": kwargs}), flush=True)
    sys.stdin.read()
app.shared_fs.duck_conn.close()
lock.release()
"""


class ServerProcess:
    """A fakesnow server child over `db_dir`. It starts importing at once; `serve()` then has it
    take the warehouse lock, open the database and serve; `stop()` lets it shut down."""

    def __init__(self, db_dir: Path) -> None:
        db_dir.mkdir(parents=True, exist_ok=True)
        self.log_file = db_dir / _SERVER_LOG
        self._early_log = tempfile.TemporaryFile(mode="w+")  # stderr until the child holds the lock
        # Its own process group. It stops when its stdin closes, as it does when this process dies:
        # no death signal or watchdog, which would kill it before it closes DuckDB (procs.py).
        self.proc = procs.start(
            [sys.executable, "-c", _SERVER_SCRIPT, str(db_dir), str(self.log_file), _LOCK_FILE],
            death_signal=None,
            watched=False,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._early_log,
            text=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read_stdout, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put("")  # EOF: the child ended

    def _message(self, timeout: float | None) -> dict[str, Any]:
        """The child's next JSON line (other stdout lines skipped); StepFailed if it ends or is late."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = ""
            if not line.strip():
                self._early_log.seek(0)
                early = "\n".join(self._early_log.read().splitlines()[-20:])
                raise StepFailed(
                    f"the LOCAL warehouse (fakesnow) did not start; see {self.log_file}:\n{early}\n"
                    f"{_tail(self.log_file)}".rstrip()
                )
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict):
                return message

    def serve(self, log: Any = None) -> dict[str, Any]:
        """Open the warehouse (waiting for the lock while another server holds it); connection kwargs."""
        self._message(_SERVER_START_TIMEOUT_S)  # imports done
        assert self.proc.stdin is not None
        self.proc.stdin.write("serve\n")
        self.proc.stdin.flush()
        message = self._message(_SERVER_START_TIMEOUT_S)
        if "waiting" in message:
            if log is not None:
                log.info(f"Waiting for another step to release the LOCAL warehouse ({message['waiting']})")
            message = self._message(None)  # the lock may be held for as long as a step runs
            message = message if "server" in message else self._message(_SERVER_START_TIMEOUT_S)
        return message["server"]

    def stop(self, wait: bool = False) -> None:
        """Close its stdin: it stops serving, closes DuckDB, releases the lock and exits. With
        `wait`, until it has; else it is reaped in the background."""
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
        except OSError:
            pass
        if wait:
            self._reap()
        else:
            threading.Thread(target=self._reap, daemon=True).start()

    def _reap(self) -> None:
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            procs.stop(self.proc, grace=0)
        procs.forget(self.proc)
        self._early_log.close()


@contextmanager
def fakesnow_server(
    db_dir: Path, log: Any = None, *, process: ServerProcess | None = None, wait: bool = True
) -> Iterator[dict[str, Any]]:
    """A fakesnow server over `db_dir` (holding its lock); yields snowflake.connector kwargs.
    `process`: one already started (imports done or under way). `wait`: on exit, until the
    server has closed the database and released the lock."""
    server = process or ServerProcess(db_dir)
    try:
        yield server.serve(log)
    finally:
        server.stop(wait=wait)


def _selects_sql_step(run: Any) -> bool:
    """Whether a run's asset selection holds a SQL step (its kind follows from its name)."""
    selection = getattr(run, "asset_selection", None) or ()
    return any(key.path and step_kind_of({"name": key.path[-1]}) == StepKind.SQL.value for key in selection)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _server_error(log_file: Path) -> str | None:
    """The last exception line fakesnow logged (for HTTP 500s, whose message says nothing)."""
    for line in reversed(_tail(log_file, 200).splitlines()):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception)\b.*:", line):
            return line.strip()
    return None


def _ident(name: str) -> str:
    """A database/schema/stage name as SQL: plain identifiers as is, anything else quoted."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*){0,2}", name):
        return name
    return '"' + name.replace('"', '""') + '"'


def split_sql(text: str) -> list[str]:
    """Statements of a file, as the Snowflake connector's `execute_string` splits them."""
    statements = []
    from snowflake.connector.util_text import split_statements

    for statement, _is_put_get in split_statements(io.StringIO(text), remove_comments=True):
        statement = statement.strip().rstrip(";").strip()
        if statement:
            statements.append(statement)
    return statements


def _rows_loaded(cursor: Any) -> int:
    """Sum of ROWS_LOADED in a COPY result (0 for "0 files processed")."""
    names = [d.name.lower() for d in cursor.description or []]
    if "rows_loaded" not in names:
        return 0
    i = names.index("rows_loaded")
    return sum(int(row[i] or 0) for row in cursor.fetchall())


def _short(sql: str) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= _STATEMENT_CHARS else flat[: _STATEMENT_CHARS - 3] + "..."


class LocalWarehouse(SqlBackend):
    """Runs SQL steps on an embedded Snowflake-compatible warehouse persisted under <home>/warehouse."""

    home: str = Field(description="LOCAL state directory; the warehouse lives in <home>/warehouse.")
    storage: LocalStorage = Field(description="The S3 mirror the step reads and writes (the `storage` resource).")
    stages: dict[str, str] = Field(default_factory=dict, description="Stage name -> the s3:// URI it is over.")
    database: str = Field(default="ML_PIPELINES", description="Database the SQL runs in.")

    _prestarted: ServerProcess | None = PrivateAttr(default=None)

    @property
    def warehouse_dir(self) -> Path:
        return Path(self.home) / "warehouse"

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """When the run will run a SQL step, start the server process's imports now."""
        if _selects_sql_step(context.run):
            self._prestarted = ServerProcess(self.warehouse_dir)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._prestarted is not None:  # not used (e.g. an earlier step failed)
            self._prestarted.stop()
            self._prestarted = None

    @contextmanager
    def snowflake_resource(self, log: Any = None) -> Iterator[Any]:
        """Start the warehouse's server (it waits for the warehouse lock), yield a SnowflakeResource
        pointed at it. On exit the server shuts down in the background, then releases the lock."""
        process, self._prestarted = self._prestarted, None
        with fakesnow_server(self.warehouse_dir, log, process=process, wait=False) as kw:
            from dagster_snowflake import SnowflakeResource  # imported here: it takes seconds

            yield SnowflakeResource(
                account=kw["account"],
                user=kw["user"],
                password=kw["password"],
                additional_snowflake_connection_args={
                    "host": kw["host"],
                    "port": kw["port"],
                    "protocol": kw["protocol"],
                    "network_timeout": kw["network_timeout"],  # no retry loop on a server error
                    "session_parameters": {**kw["session_parameters"], "nop_regexes": _NOP_REGEXES},
                },
            )

    def _stage_dirs(self) -> dict[str, tuple[Path, str]]:
        from ml_pipelines.local.snowflake_sql import normalise_name

        dirs = {}
        for name, uri in self.stages.items():
            key = uri[len("s3://") :].partition("/")[2].rstrip("/")
            dirs[normalise_name(name.split(".")[-1])] = (s3_to_local(uri, self.storage.root), f"{key}/" if key else "")
        return dirs

    def run(self, context: Any, plan: SqlPlan) -> StepOutcome:
        from ml_pipelines.local.snowflake_sql import qualified_table

        start = time.monotonic()
        log = context.log
        schema = plan.schema or "PUBLIC"
        stage_dirs = self._stage_dirs()
        setup = [
            f"CREATE DATABASE IF NOT EXISTS {_ident(self.database)}",
            f"USE DATABASE {_ident(self.database)}",
            f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}",
            f"USE SCHEMA {_ident(schema)}",
        ]
        for name, uri in self.stages.items():
            local = s3_to_local(uri, self.storage.root)
            local.mkdir(parents=True, exist_ok=True)
            url = "file://" + local.as_posix().rstrip("/") + "/"
            setup.append(f"CREATE OR REPLACE STAGE {_ident(name)} URL='{url.replace(chr(39), chr(39) * 2)}'")
        statements: list[dict[str, Any]] = []
        written: dict[str, Any] = {}  # name -> sqlglot table
        with self.snowflake_resource(log) as resource, resource.get_connection() as conn:
            cursor = conn.cursor()
            for sql in setup:
                self._execute(cursor, "(setup)", sql, sql)
            for sql_file in plan.files:
                for statement in split_sql(sql_file.text):
                    rowcount, targets = self._run_statement(cursor, sql_file.name, statement, stage_dirs, log)
                    statements.append({"file": sql_file.name, "statement": _short(statement), "rowcount": rowcount})
                    for table in targets:
                        name, full = qualified_table(table, conn.database or self.database, conn.schema or schema)
                        written.setdefault(name, full)
            table_rows = {name: self._count(cursor, table) for name, table in written.items()}
        return StepOutcome(
            metadata={
                "database": self.database,
                "schema": schema,
                "statements": statements,
                "table_row_counts": table_rows,
                "duration_s": round(time.monotonic() - start, 3),
            }
        )

    def _run_statement(
        self, cursor: Any, file_name: str, statement: str, stage_dirs: dict[str, tuple[Path, str]], log: Any
    ) -> tuple[int | None, list[Any]]:
        """Run one statement (translated where fakesnow needs it): (rows affected, tables written)."""
        from sqlglot import exp

        from ml_pipelines.local.snowflake_sql import creates_table_if_not_exists, parse, translate_copy, written_tables

        expr = parse(statement)
        sql = statement
        if isinstance(expr, exp.Create) and creates_table_if_not_exists(expr):
            target = expr.this.this if isinstance(expr.this, exp.Schema) else expr.this
            if self._count(cursor, target) is not None:
                # A no-op in Snowflake; fakesnow would also clear the table's COPY load history.
                log.info(f"{file_name}: {_short(statement)} -> table exists")
                return None, []
        if isinstance(expr, exp.Copy) and (translated := translate_copy(expr, stage_dirs)) is not None:
            sql, files = translated
            if not files:
                log.info(f"{file_name}: {_short(statement)} -> no files under the stage path, nothing loaded")
                return 0, []
            log.info(f"{file_name}: loading {len(files)} file(s): {', '.join(files[:20])}")
        self._execute(cursor, file_name, statement, sql)
        rowcount: int | None = None  # DDL, CTAS included (its result is a status row)
        if isinstance(expr, exp.Copy):
            rowcount = _rows_loaded(cursor)
        elif isinstance(expr, (exp.Insert, exp.Merge, exp.Update, exp.Delete)):
            rowcount = cursor.rowcount
        log.info(f"{file_name}: {_short(statement)} -> {'ok' if rowcount is None else f'{rowcount} rows'}")
        return rowcount, written_tables(expr)

    def _execute(self, cursor: Any, file_name: str, statement: str, sql: str) -> None:
        import snowflake.connector.errors

        try:
            cursor.execute(sql)
        except snowflake.connector.errors.Error as e:
            message = f"SQL file {file_name}: statement failed in the LOCAL warehouse:\n{_short(statement)}\n"
            if sql != statement:
                message += f"(sent as: {_short(sql)})\n"
            message += f"Error: {e}"
            if isinstance(e, snowflake.connector.errors.InternalServerError):
                detail = _server_error(self.warehouse_dir / _SERVER_LOG)
                message += (
                    f"\nfakesnow could not run it: {detail or 'see the log'} ({self.warehouse_dir / _SERVER_LOG})"
                )
            raise StepFailed(message) from None

    @staticmethod
    def _count(cursor: Any, table: Any) -> int | None:
        """Rows in a table; None when it does not exist (e.g. dropped by a later statement)."""
        import snowflake.connector.errors
        from sqlglot import exp

        try:
            cursor.execute(exp.select("COUNT(*)").from_(table).sql(dialect="snowflake"))
            return int(cursor.fetchone()[0])
        except snowflake.connector.errors.Error:
            return None


__all__ = ["LocalWarehouse", "fakesnow_server", "split_sql"]
