"""`dg`, which Dagster 1.13 recommends over `dagster dev` (whose SupersessionWarning says "Use
'dg dev' instead"), works on this repo through pyproject's [tool.dg]: `dg check defs` loads the
code location, and `dg dev` (what `make dev` runs) starts the UI with no warning about a
dagster.yaml or a superseded command. Skipped where dagster-dg-cli is not installed beside
this Python (it is a dependency of the project: `make install` brings it)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.commands.conftest import REPO, command_env, ml_pipelines

DG = Path(sys.executable).with_name("dg")
pytestmark = pytest.mark.skipif(not DG.exists(), reason=f"dagster-dg-cli is not installed ({DG} missing)")


def _env(tmp_path: Path) -> dict[str, str]:
    env = command_env(REPO, tmp_path)
    home = ml_pipelines(["dagster-home"], env, REPO, timeout=60).stdout.strip()  # as `make dev` does
    return {**env, "DAGSTER_HOME": home}


def test_dg_check_defs_loads_the_code_location(tmp_path):
    done = subprocess.run(
        [str(DG), "check", "defs"], cwd=REPO, env=_env(tmp_path), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All definitions loaded successfully" in done.stdout + done.stderr


def test_dg_dev_starts_the_ui_without_warnings(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "dg-dev.log"

    def _reset_signals():
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(DG), "dev", "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO,
            env=_env(tmp_path),
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_reset_signals,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2).read()
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.5)
        time.sleep(3)  # the daemon's first messages
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = log.read_text()
    assert "will not be used" not in text and "superseded" not in text.lower(), text[-3000:]
    assert "WARNING" not in text, text[-3000:]
