"""A project for the command tests: one pipeline whose only step waits for a marker file per
date (the test decides when a run ends), one whose step fails, both max_active_runs: 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

CONFIG = """\
dags:
  sagemaker:
    domain: t
    sub_domain: {sub_domain}
    action: Daily
    default_args:
      owner: "Commands Team"
      start_date: "2024-1-1"
      retries: 0
    schedule_interval: "0 6 * * *"
    max_active_runs: 1
    tasks:
      - name: python_script_first
        script_loc: common
        script_name: {script}
        templates_dict:
          marker: "{root}/go-{sub_domain}-{{{{ ds }}}}"
      - name: python_script_second
        upstream_task_name: [python_script_first]
        script_loc: common
        script_name: echo
"""

SCRIPTS = {
    "echo.py": "print('echo')\n",
    # waits (at most 120 s) until the test creates the marker of its date
    "wait_for_marker.py": (
        "import os, sys, time\n"
        "args = dict(zip(sys.argv[1::2], sys.argv[2::2]))\n"
        "deadline = time.time() + 120\n"
        "while not os.path.exists(args['--marker']) and time.time() < deadline:\n"
        "    time.sleep(0.1)\n"
        "print('marker seen' if os.path.exists(args['--marker']) else 'gave up')\n"
    ),
    "always_fail.py": "import sys\nsys.exit('this step fails on purpose\\nsecond line')\n",
}


def write_commands_project(root: Path) -> Path:
    project = root / "project"
    (project / "model_configs").mkdir(parents=True)
    (project / "Py_Models").mkdir()
    for name, text in SCRIPTS.items():
        (project / "Py_Models" / name).write_text(text)
    for sub_domain, script in (("limit", "wait_for_marker"), ("broken", "always_fail")):
        (project / "model_configs" / f"{sub_domain}.yml").write_text(
            CONFIG.format(sub_domain=sub_domain, script=script, root=root)
        )
    return project


def command_env(project: Path, root: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "ML_PIPELINES_PROJECT_DIR": str(project),
        "ML_PIPELINES_HOME": str(root / "home"),
        "ML_PIPELINES_ENV": "LOCAL",
        "PYTHONPATH": str(REPO),
    }
    env.pop("DAGSTER_HOME", None)
    env.pop("ML_PIPELINES_STORAGE_ROOT", None)
    env.pop("ML_PIPELINES_UI_URL", None)
    return {**env, **extra}


def ml_pipelines(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ml_pipelines.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
