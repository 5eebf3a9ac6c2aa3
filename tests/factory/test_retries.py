"""Retries only where another attempt can help.

A pipeline with `retries: 3`: a step that runs and fails (a script's non-zero exit) is retried;
a step that cannot run as configured (plan errors, missing files, a kernel LOCAL cannot run, a
missing requirements file, an awsglue call LOCAL Glue lacks) fails at once, with no retry.
Real in-process runs of the factory's assets on an on-disk instance.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from dagster import AssetKey, materialize

from ml_pipelines.local.awsglue import COMPAT_ROOT
from ml_pipelines.local.glue import unsupported_in_local
from tests.factory.conftest import build_defs

PIPELINE_ID = "t_retry_Daily"
PARTITION = "2024-01-03"

CONFIG = """\
dags:
  sagemaker:
    domain: t
    sub_domain: retry
    action: Daily
    default_args:
      owner: "Retry Team"
      start_date: "2024-1-1"
      retries: 3
      retry_delay: 0.001
    schedule_interval: "0 6 * * *"
    tasks:
{tasks}
"""


def _script_step(name: str, script: str, templates: str = "") -> str:
    step = f"      - name: {name}\n        script_loc: common\n        script_name: {script}\n"
    if templates:
        step += f"        templates_dict: {{{templates}}}\n"
    return step


SCRIPTS = {
    "echo.py": "print('echo')\n",
    "always_fail.py": "import sys\nsys.exit('this step always fails')\n",
    "fail_first_time.py": (
        "import os, sys\n"
        "args = dict(zip(sys.argv[1::2], sys.argv[2::2]))\n"
        "if not os.path.exists(args['--marker']):\n"
        "    open(args['--marker'], 'w').close()\n"
        "    sys.exit('first attempt fails on purpose')\n"
        "print('second attempt succeeds')\n"
    ),
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("retries")
    project = root / "p"
    (project / "model_configs").mkdir(parents=True)
    (project / "Py_Models" / "with_reqs").mkdir(parents=True)
    for name, text in SCRIPTS.items():
        (project / "Py_Models" / name).write_text(text)
    (project / "Py_Models" / "with_reqs.py").write_text("print('never runs')\n")
    (project / "Py_Models" / "with_reqs" / "requirements.txt").write_text("six\n")
    (project / "Py_Models" / "gone.py").write_text("print('deleted before it runs')\n")
    tasks = "".join(
        [
            _script_step("python_script_flaky", "fail_first_time", f'marker: "{root / "flaky.marker"}"'),
            _script_step("python_script_always_fail", "always_fail"),
            # renders at load (for start_date), fails for later days: a plan error at run time
            _script_step(
                "python_script_bad_template", "echo", "x: \"{{ ds if ds == '2024-01-01' else var.value.NOPE }}\""
            ),
            _script_step("python_script_gone", "gone"),
            _script_step("python_script_with_reqs", "with_reqs"),
            "      - name: ecr_container_creation\n        kernel: tensorflow2_p36\n",
        ]
    )
    (project / "model_configs" / "retry.yml").write_text(CONFIG.format(tasks=tasks))
    defs = build_defs(project, root / "home")
    # files that existed when the code location loaded and are gone when the step runs
    (project / "Py_Models" / "gone.py").unlink()
    (project / "Py_Models" / "with_reqs" / "requirements.txt").unlink()
    return defs


def _run(defs, instance, step: str):
    key = AssetKey([PIPELINE_ID, step])
    assets_def = defs.get_assets_def(key)
    result = materialize(
        [assets_def],
        partition_key=PARTITION if assets_def.partitions_def is not None else None,
        instance=instance,
        resources=defs.resources,
        raise_on_error=False,
    )
    events = [e.event_type_value for e in result.all_events if e.step_key == key.to_python_identifier()]
    return result, events


def _failure(result) -> str:
    (event,) = result.get_step_failure_events()
    return event.step_failure_data.error.to_string()


def test_the_pipelines_retries_reach_every_step(project):
    op = project.get_assets_def(AssetKey([PIPELINE_ID, "python_script_flaky"])).op
    assert op.retry_policy.max_retries == 3
    assert op.retry_policy.backoff is None  # the same delay before every retry, as Airflow by default


def test_a_script_that_fails_once_is_retried_and_succeeds(project, instance):
    result, events = _run(project, instance, "python_script_flaky")
    assert result.success
    assert events.count("STEP_UP_FOR_RETRY") == 1 and events.count("STEP_SUCCESS") == 1


def test_a_script_that_keeps_failing_is_retried_then_fails(project, instance):
    result, events = _run(project, instance, "python_script_always_fail")
    assert not result.success
    assert events.count("STEP_UP_FOR_RETRY") == 3 and events.count("STEP_FAILURE") == 1
    assert "this step always fails" in _failure(result)


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ("python_script_bad_template", "templates_dict.x: variable 'NOPE' is not defined"),  # a plan error
        ("python_script_gone", "script not found"),
        ("python_script_with_reqs", "requirements file not found"),
        ("ecr_container_creation", "kernel 'tensorflow2_p36' cannot run in LOCAL"),
    ],
)
def test_a_step_that_cannot_run_as_configured_fails_at_once(project, instance, step, expected):
    result, events = _run(project, instance, step)
    assert not result.success
    assert "STEP_UP_FOR_RETRY" not in events
    assert events.count("STEP_START") == 1 and events.count("STEP_FAILURE") == 1
    assert expected in _failure(result)


def _traceback_of(code: str) -> list[str]:
    """stderr lines of a real Python process running `code` with LOCAL's awsglue importable."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(COMPAT_ROOT)}
    )
    assert done.returncode == 1
    return done.stderr.splitlines()


def test_an_unsupported_awsglue_call_is_told_from_a_script_error():
    assert unsupported_in_local(_traceback_of("import awsglue.gluetypes"))
    assert unsupported_in_local(_traceback_of("from awsglue.transforms import ApplyMapping\nApplyMapping.apply()"))
    assert not unsupported_in_local(_traceback_of("raise ValueError('a bug in the script')"))
    # the script's own error while handling an unsupported call: its last traceback decides
    chained = "import awsglue\ntry:\n    import awsglue.gluetypes\nexcept ImportError:\n    raise KeyError('x')"
    assert not unsupported_in_local(_traceback_of(chained))
    assert not unsupported_in_local(["some log line", "awsglue.UnsupportedInLocal: not in a traceback"])
