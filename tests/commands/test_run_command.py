"""`ml-pipelines run` without a daemon: the run is created on the project's own instance (the
DAGSTER_HOME of `make dev`), started by the command through the same run worker as a run
from the UI, followed step by step; a failure exits 1; max_active_runs holds between two
commands."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

from ml_pipelines.factory.assets import PIPELINE_TAG
from tests.commands.conftest import command_env, ml_pipelines, write_commands_project

LIMIT, BROKEN = "t_limit_Daily", "t_broken_Daily"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("run-command")
    project = write_commands_project(root)
    return root, project, command_env(project, root)


def _instance(root: Path) -> DagsterInstance:
    return DagsterInstance.from_config(str(root / "home" / "dagster_home"))


def _run_of(instance: DagsterInstance, output: str):
    (run_id,) = {
        w for line in output.splitlines() if " run " in line and "in the UI" in line for w in line.split()[2:3]
    }
    return instance.get_run_by_id(run_id)


def test_a_run_shows_each_step_and_lands_in_the_projects_instance(setup):
    root, project, env = setup
    (root / "go-limit-2024-01-03").touch()
    done = ml_pipelines(["run", LIMIT, "--date", "2024-01-03"], env, project)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for line in ("python_script_first: started", "python_script_first: succeeded", "python_script_second: succeeded"):
        assert line in out, out
    assert out.index("python_script_first: succeeded") < out.index("python_script_second: started")
    assert out.rstrip().endswith("run succeeded")
    assert "no dagster-daemon runs on this instance" in out
    assert "RUN_START" not in out + done.stderr  # Dagster's own console log goes to a file, not the terminal
    with _instance(root) as instance:  # the project's instance: <ML_PIPELINES_HOME>/dagster_home
        run = _run_of(instance, out)
        assert run.status == DagsterRunStatus.SUCCESS
        assert run.job_name == LIMIT  # the pipeline's job: the runs list names the pipeline
        assert run.tags["dagster/partition"] == "2024-01-03" and run.tags[PIPELINE_TAG] == LIMIT
        assert run.remote_job_origin.location_name == "ml_pipelines"


def test_a_failed_step_exits_1_with_its_error_and_names_the_steps_not_run(setup):
    root, project, env = setup
    done = ml_pipelines(["run", BROKEN, "--date", "2024-01-03"], env, project)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "python_script_first: FAILED" in done.stdout and "this step fails on purpose" in done.stdout
    assert "not run" in done.stdout and "python_script_second" in done.stdout.split("not run")[1]
    assert "failed" in done.stderr


def test_one_step_runs_alone(setup):
    root, project, env = setup
    done = ml_pipelines(["run", LIMIT, "--date", "2024-01-04", "--step", "python_script_second"], env, project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "python_script_second: succeeded" in done.stdout and "python_script_first" not in done.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "t_nothing_Daily", "--date", "2024-01-03"], "t_nothing_Daily"),
        (["run", LIMIT, "--date", "2023-12-31"], "no partition '2023-12-31'"),
        (["run", LIMIT], "give --date"),
        (["run", LIMIT, "--date", "2024-01-03", "--step", "nope"], "no runnable step 'nope'"),
    ],
)
def test_mistakes_exit_1_with_one_line(setup, args, message):
    _, project, env = setup
    done = ml_pipelines(args, env, project, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_max_active_runs_holds_between_two_commands_without_a_daemon(setup):
    root, project, env = setup
    command = [sys.executable, "-m", "ml_pipelines.cli", "run", LIMIT, "--date"]
    logs = {day: root / f"cli-{day}.log" for day in ("2024-01-06", "2024-01-07")}
    (root / "go-limit-2024-01-07").touch()  # the second run would end at once
    first = subprocess.Popen([*command, "2024-01-06"], env=env, cwd=project, stdout=logs["2024-01-06"].open("w"))
    second = None
    try:
        _until(lambda: "python_script_first: started" in logs["2024-01-06"].read_text(), 120)
        second = subprocess.Popen([*command, "2024-01-07"], env=env, cwd=project, stdout=logs["2024-01-07"].open("w"))
        _until(lambda: "waiting: 1 run(s) of t_limit_Daily in progress" in logs["2024-01-07"].read_text(), 60)
        time.sleep(2)
        assert "run started" not in logs["2024-01-07"].read_text()  # held while the first runs
        (root / "go-limit-2024-01-06").touch()
        assert first.wait(120) == 0 and second.wait(120) == 0, [p.read_text() for p in logs.values()]
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
    with _instance(root) as instance:
        runs = {day: _run_of(instance, logs[day].read_text()) for day in logs}
        first_end = _event_time(instance, runs["2024-01-06"].run_id, DagsterEventType.RUN_SUCCESS)
        second_start = _event_time(instance, runs["2024-01-07"].run_id, DagsterEventType.RUN_START)
        assert second_start >= first_end


def _event_time(instance: DagsterInstance, run_id: str, kind: DagsterEventType) -> float:
    (record,) = instance.get_records_for_run(run_id, of_type=kind).records
    return record.event_log_entry.timestamp


def _until(check, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.2)


def test_dagster_asset_materialize_without_dagster_home_warns_that_the_ui_will_not_see_it(setup, tmp_path):
    root, project, env = setup
    command = [
        str(Path(sys.executable).with_name("dagster")), "asset", "materialize", "-m", "ml_pipelines.definitions",
        "--select", f"{LIMIT}/python_script_second", "--partition", "2024-01-05",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "DAGSTER_HOME is not set" in done.stderr and "will not appear in the UI" in done.stderr


def test_ctrl_c_cancels_the_run(setup):
    import signal

    root, project, env = setup
    log = root / "cli-ctrl-c.log"
    command = [sys.executable, "-m", "ml_pipelines.cli", "run", LIMIT, "--date", "2024-01-09"]
    proc = subprocess.Popen(command, env=env, cwd=project, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        _until(lambda: "python_script_first: started" in log.read_text(), 120)  # waits for a marker never made
        proc.send_signal(signal.SIGINT)
        assert proc.wait(120) == 130, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert "interrupted: canceling run" in text and "run canceled" in text, text
    with _instance(root) as instance:
        assert _run_of(instance, text).status == DagsterRunStatus.CANCELED
