"""Attack: a killed or cancelled run must not leave its step's children running.

A real terminal run (`dagster asset materialize`, the multiprocess executor, an on-disk
instance) of a Python-script step whose script ignores SIGINT, starts a grandchild
(`sleep`) and sleeps; both write their pids. Then the run worker is SIGKILLed, the step
process is SIGKILLed, or the run worker gets SIGTERM (a cancelled run): the script and
its grandchild must be gone within seconds (before: the script ran to completion
re-parented to PID 1, or kept running 20 s after a SIGTERM).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.processes import dagster_env

DAGSTER = str(Path(sys.executable).with_name("dagster"))
PARTITION = "2024-01-03"
GONE_WITHIN_S = 8.0  # less than the 10 s grace and the old 20 s SIGINT timeout

SCRIPT = """\
import os, signal, subprocess, sys, time
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
signal.signal(signal.SIGINT, signal.SIG_IGN)
grandchild = subprocess.Popen(["sleep", "300"])
with open(args["--pids"] + ".tmp", "w") as f:
    f.write(f"{os.getpid()} {grandchild.pid} {os.getppid()}")
os.replace(args["--pids"] + ".tmp", args["--pids"])
time.sleep(300)
"""

CONFIG = """\
dags:
  orphans:
    domain: t
    sub_domain: orphans
    action: Daily
    default_args:
      owner: "Attack Team"
      start_date: "2024-1-1"
      retries: 0
    schedule_interval: "0 6 * * *"
    tasks:
      - name: python_script_sleeper
        script_loc: common
        script_name: sleeper
        templates_dict: {{pids: "{pids}"}}
"""


def _alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _wait_gone(pids: list[int], timeout: float) -> float | None:
    """Seconds until none of `pids` runs, or None if some still run after `timeout`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if not any(_alive(p) for p in pids):
            return time.monotonic() - start
        time.sleep(0.05)
    return None


@pytest.fixture
def launch(tmp_path: Path):
    project = tmp_path / "project"
    (project / "model_configs").mkdir(parents=True)
    (project / "Py_Models").mkdir()
    (project / "Py_Models" / "sleeper.py").write_text(SCRIPT)
    pids_file = tmp_path / "pids"
    (project / "model_configs" / "orphans.yml").write_text(CONFIG.format(pids=pids_file))
    env = dagster_env(tmp_path, project)
    started: list[subprocess.Popen] = []
    leftovers: list[int] = []

    def start() -> tuple[subprocess.Popen, int, int, int]:
        """The run worker, and the script's, its grandchild's and the step process's pids."""
        worker = subprocess.Popen(
            [DAGSTER, "asset", "materialize", "-m", "ml_pipelines.definitions"]
            + ["--select", "group:t_orphans_Daily", "--partition", PARTITION],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(worker)
        deadline = time.monotonic() + 120
        while not pids_file.exists():
            assert worker.poll() is None, "the run ended before the script started"
            assert time.monotonic() < deadline, "the script did not start"
            time.sleep(0.1)
        script, grandchild, step = map(int, pids_file.read_text().split())
        leftovers.extend([script, grandchild, step])
        assert step != worker.pid  # the script's parent is the step's own process
        return worker, script, grandchild, step

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    for pid in leftovers:  # whatever a failing test left behind
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_sigkill_of_the_run_worker_takes_the_script(launch) -> None:
    worker, script, grandchild, _step = launch()
    worker.kill()
    took = _wait_gone([script, grandchild], GONE_WITHIN_S)
    assert took is not None, "the script outlived its SIGKILLed run worker"
    print(f"\nrun worker SIGKILLed: script and grandchild gone after {took:.2f}s")


def test_sigkill_of_the_step_process_takes_the_script(launch) -> None:
    _worker, script, grandchild, step = launch()
    os.kill(step, signal.SIGKILL)
    took = _wait_gone([script, grandchild], GONE_WITHIN_S)
    assert took is not None, "the script outlived its SIGKILLed step process"
    print(f"\nstep process SIGKILLed: script and grandchild gone after {took:.2f}s")


def test_sigterm_to_the_run_worker_stops_the_script_within_the_grace(launch) -> None:
    worker, script, grandchild, _step = launch()
    worker.terminate()
    took = _wait_gone([script, grandchild], GONE_WITHIN_S)
    assert took is not None, "the script kept running after its run was terminated"
    print(f"\nrun worker SIGTERMed: script and grandchild gone after {took:.2f}s")
    worker.wait(timeout=60)
