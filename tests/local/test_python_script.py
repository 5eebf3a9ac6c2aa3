"""LOCAL Python-script backend: the script runs through Dagster Pipes in the step env."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance

from ml_pipelines.local.envs import ensure_python_env
from ml_pipelines.local.python_script import CapturingPipesSubprocessClient, LocalPythonScripts
from ml_pipelines.plan.model import PythonScriptPlan

from .fixtures.helpers import PY_MODELS, failure_text, log_messages, run_identity, run_step, shared_home, step_metadata


@pytest.fixture(scope="module")
def home(tmp_path_factory: Any) -> Path:
    home = shared_home(tmp_path_factory)
    ensure_python_env(home, "python3", PY_MODELS / "echo_args" / "requirements.txt", logging.getLogger(__name__))
    return home


def script_plan(name: str, arguments: dict[str, str], lib: bool = False) -> PythonScriptPlan:
    script_dir = PY_MODELS / name
    return PythonScriptPlan(
        run=run_identity(f"python_script_{name}"),
        script=PY_MODELS / f"{name}.py",
        script_dir=script_dir,
        lib_dir=script_dir / "lib" if lib else None,
        requirements_file=PY_MODELS / "echo_args" / "requirements.txt",
        arguments=arguments,
    )


def test_plain_script_arguments_lib_and_stdout(home: Path, instance: DagsterInstance) -> None:
    plan = script_plan("echo_args", {"name": "ada", "count": "3"}, lib=True)
    result = run_step(
        LocalPythonScripts(home=str(home), pipes=CapturingPipesSubprocessClient()),
        lambda b, ctx: b.run(ctx, plan),
        instance,
    )
    assert result.success, failure_text(result)

    messages = log_messages(instance, result)
    assert "[stdout] hello ada x3" in messages  # --key value arguments, lib/ import, stdout in the Dagster log
    assert "[stdout] cwd=echo_args" in messages  # cwd = script_dir
    assert "[stderr] a note on stderr" in messages
    # the script runs inside the step's Pipes session, so Pipes has nothing to warn about
    assert not any("did not receive any messages" in m for m in messages)
    meta = step_metadata(result)
    assert meta["exit_code"] == 0
    assert meta["stdout_tail"] == "hello ada x3\ncwd=echo_args"
    print(f"\nscript step {meta['duration_s']}s")


def test_pipes_script_reports_logs_and_metadata(home: Path, instance: DagsterInstance) -> None:
    plan = script_plan("pipes_report", {"day": "2024-01-01"})
    result = run_step(
        LocalPythonScripts(home=str(home), pipes=CapturingPipesSubprocessClient()),
        lambda b, ctx: b.run(ctx, plan),
        instance,
    )
    assert result.success, failure_text(result)
    messages = log_messages(instance, result)
    assert any("pipes says hi, args=['--day', '2024-01-01']" in m for m in messages)
    assert "[stdout] plain stdout from a pipes script" in messages
    meta = step_metadata(result)
    assert meta["rows_scored"] == 42 and meta["model"] == "demo" and meta["exit_code"] == 0


def test_failing_script(home: Path, instance: DagsterInstance) -> None:
    plan = script_plan("fails", {})
    result = run_step(
        LocalPythonScripts(home=str(home), pipes=CapturingPipesSubprocessClient()),
        lambda b, ctx: b.run(ctx, plan),
        instance,
    )
    assert not result.success
    text = failure_text(result)
    assert "exited with code 3" in text
    assert "stderr line 49" in text and "stderr line 20" in text  # the tail...
    assert "stderr line 19\n" not in text  # ...and only the last 30 lines
    assert "[stdout] stdout before failing" in log_messages(instance, result)


def test_raising_script_shows_its_own_traceback(home: Path, instance: DagsterInstance) -> None:
    plan = script_plan("raises", {})
    result = run_step(
        LocalPythonScripts(home=str(home), pipes=CapturingPipesSubprocessClient()),
        lambda b, ctx: b.run(ctx, plan),
        instance,
    )
    assert not result.success
    text = failure_text(result)
    assert "exited with code 1" in text
    assert "ValueError: no rows for 2024-01-01" in text
    assert 'raises.py", line 5, in load_rows' in text and 'raises.py", line 9, in <module>' in text
    assert "runpy" not in text and "pipes_launcher" not in text  # only the script's frames
