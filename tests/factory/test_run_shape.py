"""Runs as the terminal and the UI launch them: one op per step in its own process.

`dagster asset materialize` on the real code location (ml_pipelines.definitions) with the
environment's executor, against an on-disk instance; the tests read the event log.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus, EventRecordsFilter

from ml_pipelines.factory.assets import PIPELINE_TAG
from tests.processes import dagster_env

DAGSTER = str(Path(sys.executable).with_name("dagster"))
PARTITION = "2024-01-03"

SCRIPTS = {
    "sleep_then_echo.py": (
        "import sys, time\n"
        "args = dict(zip(sys.argv[1::2], sys.argv[2::2]))\n"
        "time.sleep(float(args.get('--seconds', '0')))\n"
        "print('done ' + args.get('--name', ''))\n"
    ),
    "fail_first_time.py": (
        "import os, sys\n"
        "args = dict(zip(sys.argv[1::2], sys.argv[2::2]))\n"
        "marker = args['--marker']\n"
        "if not os.path.exists(marker):\n"
        "    open(marker, 'w').close()\n"
        "    sys.exit('first attempt fails on purpose')\n"
        "print('second attempt succeeds')\n"
    ),
    "always_fail.py": "import sys\nsys.exit('this step always fails')\n",
}

SHAPE = """\
dags:
  sagemaker:
    domain: t
    sub_domain: shape
    action: Daily
    default_args:
      owner: "Shape Team"
      start_date: "2024-1-1"
      retries: 1
      retry_delay: 0
    schedule_interval: "0 6 * * *"
    tasks:
      - name: python_script_start
        script_loc: common
        script_name: sleep_then_echo
      - name: python_script_left
        upstream_task_name: [python_script_start]
        script_loc: common
        script_name: sleep_then_echo
        templates_dict: {{seconds: "4", name: left}}
      - name: python_script_right
        upstream_task_name: [python_script_start]
        script_loc: common
        script_name: sleep_then_echo
        templates_dict: {{seconds: "4", name: right}}
      - name: python_script_flaky
        upstream_task_name: [python_script_start]
        script_loc: common
        script_name: fail_first_time
        templates_dict: {{marker: "{marker}"}}
  broken:
    domain: t
    sub_domain: broken
    action: Daily
    default_args:
      owner: "Shape Team"
      start_date: "2024-1-1"
      retries: 0
    schedule_interval: "0 6 * * *"
    tasks:
      - name: python_script_fail
        script_loc: common
        script_name: always_fail
      - name: python_script_after
        upstream_task_name: [python_script_fail]
        script_loc: common
        script_name: sleep_then_echo
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("shape")
    project = root / "project"
    (project / "model_configs").mkdir(parents=True)
    (project / "Py_Models").mkdir()
    for name, text in SCRIPTS.items():
        (project / "Py_Models" / name).write_text(text)
    (project / "model_configs" / "shape.yml").write_text(SHAPE.format(marker=root / "flaky.marker"))
    env = dagster_env(root, project)
    dagster_home = Path(env["DAGSTER_HOME"])
    return env, dagster_home


def _materialize(env: dict[str, str], selection: str) -> subprocess.CompletedProcess:
    command = [
        DAGSTER,
        "asset",
        "materialize",
        "-m",
        "ml_pipelines.definitions",
        "--select",
        selection,
        "--partition",
        PARTITION,
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def _steps(instance: DagsterInstance, run_id: str) -> dict[str, dict[str, list[float]]]:
    """step key -> event type -> timestamps."""
    out: dict[str, dict[str, list[float]]] = {}
    for entry in instance.all_logs(run_id):
        if entry.is_dagster_event and entry.step_key:
            kind = entry.dagster_event.event_type_value
            out.setdefault(entry.step_key, {}).setdefault(kind, []).append(entry.timestamp)
    return out


def _only_run(instance: DagsterInstance, group: str):
    runs = [r for r in instance.get_runs() if r.tags.get(PIPELINE_TAG) == group]
    assert len(runs) == 1, [r.tags for r in instance.get_runs()]
    return runs[0]


@pytest.fixture(scope="module")
def shape_run(setup):
    env, home = setup
    done = _materialize(env, "group:t_shape_Daily")
    with DagsterInstance.from_config(str(home)) as instance:
        run = _only_run(instance, "t_shape_Daily")
        yield done, run, _steps(instance, run.run_id)


def test_each_step_is_its_own_op_and_the_run_names_its_pipeline(shape_run):
    done, run, steps = shape_run
    assert done.returncode == 0, done.stderr[-3000:]
    assert run.status == DagsterRunStatus.SUCCESS
    assert run.tags[PIPELINE_TAG] == "t_shape_Daily"  # launched by hand, tagged by its first step
    names = {f"t_shape_Daily__python_script_{n}" for n in ("start", "left", "right", "flaky")}
    assert set(steps) == names
    for name in names:
        assert "STEP_SUCCESS" in steps[name], (name, steps[name])


def test_independent_steps_overlap_in_time(shape_run):
    _, _, steps = shape_run
    start, left, right = (steps[f"t_shape_Daily__python_script_{n}"] for n in ("start", "left", "right"))
    assert left["STEP_START"][0] >= start["STEP_SUCCESS"][0]  # after their upstream step
    assert right["STEP_START"][0] >= start["STEP_SUCCESS"][0]
    # each sleeps 4 s; run one after the other they could not overlap
    assert left["STEP_START"][0] < right["STEP_SUCCESS"][0]
    assert right["STEP_START"][0] < left["STEP_SUCCESS"][0]


def test_a_step_retries_on_its_own(shape_run):
    _, _, steps = shape_run
    flaky = steps["t_shape_Daily__python_script_flaky"]
    assert len(flaky["STEP_UP_FOR_RETRY"]) == 1 and len(flaky["STEP_RESTARTED"]) == 1
    assert len(flaky["STEP_SUCCESS"]) == 1
    for other in ("start", "left", "right"):  # retrying one step re-runs nothing else
        assert len(steps[f"t_shape_Daily__python_script_{other}"]["STEP_START"]) == 1


def test_a_failed_steps_downstream_is_not_run(setup):
    env, home = setup
    done = _materialize(env, "group:t_broken_Daily")
    assert done.returncode != 0
    with DagsterInstance.from_config(str(home)) as instance:
        run = _only_run(instance, "t_broken_Daily")
        assert run.status == DagsterRunStatus.FAILURE
        steps = _steps(instance, run.run_id)
        assert "STEP_FAILURE" in steps["t_broken_Daily__python_script_fail"]
        after_events = steps["t_broken_Daily__python_script_after"]
        assert set(after_events) == {"ASSET_MATERIALIZATION_PLANNED"}  # never started, never failed
        after = AssetKey(["t_broken_Daily", "python_script_after"])
        records = instance.get_event_records(
            EventRecordsFilter(event_type=DagsterEventType.ASSET_MATERIALIZATION, asset_key=after)
        )
        assert records == []
