"""A one-step project (a common Python script) to exercise schedules and run semantics fast."""

from __future__ import annotations

from pathlib import Path

CONFIG = """\
dags:
  sagemaker:
    domain: t
    sub_domain: tiny
    action: Daily
    default_args:
      owner: "Tiny Team"
      start_date: "2024-1-1"
      depends_on_past: {depends_on_past}
      retries: 0
    schedule_interval: "0 6 * * *"
    catchup: {catchup}
    max_active_runs: 1
    tasks:
      - name: python_script_echo
        type: BashOperator
        script_loc: common
        script_name: echo
        templates_dict:
          dt: "{{{{ ds }}}}"
{extra}
"""

SCRIPT = """\
import sys
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
print("echo dt=" + args["--dt"])
"""

PIPELINE_ID = "t_tiny_Daily"


def write_tiny_project(root: Path, *, catchup: bool = False, depends_on_past: bool = False, extra: str = "") -> Path:
    (root / "model_configs").mkdir(parents=True)
    (root / "Py_Models").mkdir()
    (root / "Py_Models" / "echo.py").write_text(SCRIPT)
    (root / "model_configs" / "tiny.yml").write_text(
        CONFIG.format(catchup=catchup, depends_on_past=depends_on_past, extra=extra)
    )
    return root
