"""Child processes that die with the step that started them.

Every LOCAL child (Python and Glue scripts, pip and venv builds, the warehouse server,
notebook kernels) is started through `start()` (kernels get `preexec()` and `watch()`):

- in a session and process group of its own, so `stop()` reaches the child and all it
  started, and a terminal's Ctrl-C reaches the step, which decides;
- on Linux with `PR_SET_PDEATHSIG`: the kernel signals the child when the *thread* that
  started it ends, so a SIGKILLed or crashed step process takes the child with it. Start a
  child from the thread that waits for it (Dagster runs a step in its process's main thread);
- watched: in a step process of Dagster's multiprocess executor, a thread waits on the run
  worker (`multiprocessing.parent_process()`); when the run worker dies, every live child
  group is stopped, so the step fails at once instead of running on, orphaned.

`stop()`: SIGTERM to the group, `GRACE_S` for the child to exit, then SIGKILL to the group
(stragglers included); the child is reaped.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import multiprocessing.connection
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

GRACE_S = 10.0
_PR_SET_PDEATHSIG = 1

_libc_prctl: Any = None
if sys.platform.startswith("linux"):
    try:
        _libc_prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # no prctl in this libc: no death signal
        _libc_prctl = None

_live: set[subprocess.Popen] = set()
_live_lock = threading.Lock()
_watchdog_pid: int | None = None  # the process whose watchdog thread runs (not inherited by forks)


def preexec(death_signal: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A Popen `preexec_fn` that makes the child get `death_signal` when its starting thread ends."""
    if _libc_prctl is None:
        return None
    parent = os.getpid()
    prctl = _libc_prctl

    def set_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, int(death_signal), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), death_signal)

    return set_death_signal


def start(
    command: Sequence[str], *, death_signal: int | None = signal.SIGKILL, watched: bool = True, **popen_kwargs: Any
) -> subprocess.Popen:
    """`subprocess.Popen(command, ...)` in a new session, with `death_signal` (None: none) and
    watched (see the module doc)."""
    preexec_fn = preexec(death_signal) if death_signal else None
    proc = subprocess.Popen(list(command), start_new_session=True, preexec_fn=preexec_fn, **popen_kwargs)
    if watched:
        watch(proc)
    return proc


def watch(proc: subprocess.Popen) -> None:
    """Stop `proc`'s group when this step process's run worker dies (see the module doc)."""
    global _watchdog_pid
    with _live_lock:
        _live.add(proc)
        if _watchdog_pid != os.getpid() and multiprocessing.parent_process() is not None:
            _watchdog_pid = os.getpid()
            threading.Thread(target=_watch_run_worker, name="ml-pipelines-child-watchdog", daemon=True).start()


def forget(proc: subprocess.Popen) -> None:
    with _live_lock:
        _live.discard(proc)


def _watch_run_worker() -> None:
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    multiprocessing.connection.wait([parent.sentinel])  # readable once the run worker has died
    with _live_lock:
        procs = [p for p in _live if p.poll() is None]
    stop_all(procs)


def signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Send `sig` to the child's process group (its pid: it leads a session of its own)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(proc.pid, sig)


def stop(proc: subprocess.Popen, grace: float = GRACE_S) -> int:
    """SIGTERM the child's group, wait up to `grace` s, SIGKILL the group; the exit code."""
    stop_all([proc], grace)
    return proc.returncode


def stop_all(procs: Sequence[subprocess.Popen], grace: float = GRACE_S) -> None:
    for proc in procs:
        signal_group(proc, signal.SIGTERM)
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):  # then it is killed
            proc.wait(timeout=grace)
        signal_group(proc, signal.SIGKILL)  # the child, if it ignored SIGTERM, and what it left behind
        proc.wait()
        forget(proc)


def finish(proc: subprocess.Popen) -> None:
    """After the child exited: kill what it left running in its group, and stop watching it."""
    signal_group(proc, signal.SIGKILL)
    forget(proc)


def run(command: Sequence[str], *, grace: float = GRACE_S, **popen_kwargs: Any) -> subprocess.CompletedProcess:
    """`subprocess.run(command, ...)` through `start()`: an interrupted caller stops the child's group."""
    proc = start(command, **popen_kwargs)
    try:
        stdout, stderr = proc.communicate()
    except BaseException:  # KeyboardInterrupt, Dagster's interrupt: the child must not outlive the step
        stop(proc, grace)
        raise
    finish(proc)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
