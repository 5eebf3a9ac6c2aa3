"""The `ml-pipelines` console script: validate, list, plan."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ml_pipelines import cli

from .conftest import FORECAST, PROJECT_OK, FixtureProject

SCRIPT = Path(sys.executable).parent / "ml-pipelines"
REPO = Path(__file__).resolve().parents[2]  # the repo is an example project
ERROR_LINE = re.compile(r"^(?P<file>[^:\s]+):(?P<line>\d+): (?P<key>[^:]+): (?P<message>.+)$")


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "ml_pipelines.cli"]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ML_PIPELINES_")}
    environ.update(env or {})
    return subprocess.run(
        command + list(args), capture_output=True, text=True, env=environ, cwd=cwd, timeout=120, check=False
    )


def main(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_validate_clean_project_exits_0() -> None:
    result = run("--project-dir", str(PROJECT_OK), "validate")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith(
        "OK: 2 pipelines valid in every environment in 2 config files (envs LOCAL/DEV/BETA/PROD"
    )
    assert len(result.stderr.strip().splitlines()) == 1


def test_validate_broken_project_prints_one_line_per_error(project: FixtureProject) -> None:
    project.edit(
        FORECAST,
        ('kernel: "python3"', 'kernel: "python4"'),
        ('instance_count: "1"', 'instance_cnt: "1"'),
        ('upstream_task_name: "ecr_container_creation"', 'upstream_task_name: "ecr_container_creaton"'),
    )
    result = run("validate", env={"ML_PIPELINES_PROJECT_DIR": str(project.root)})
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    for line in lines:
        match = ERROR_LINE.match(line)
        assert match, line
        assert match["file"] == FORECAST
    assert "did you mean 'instance_count'" in result.stdout
    assert result.stderr.startswith("3 errors in 1 file; 1 pipeline valid")
    assert "Traceback" not in result.stdout + result.stderr


def test_validate_yaml_error_is_one_line(project: FixtureProject) -> None:
    project.write("model_configs/bad.yml", "dags:\n  sagemaker: [\n")
    result = run("--project-dir", str(project.root), "validate")
    assert result.returncode == 1
    assert len(result.stdout.splitlines()) == 1
    assert result.stdout.startswith("model_configs/bad.yml:3: YAML syntax error")


def test_project_dir_defaults_to_the_current_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ML_PIPELINES_PROJECT_DIR", raising=False)
    monkeypatch.chdir(PROJECT_OK)
    code, out, err = main("validate")
    assert code == 0 and str(PROJECT_OK) in err


def test_validate_checks_every_environment_and_labels_errors(project: FixtureProject) -> None:
    """An error of some environments is labelled with them; one of all environments is printed once."""
    project.edit(
        FORECAST,
        ('model_bucket: "movies-prod"', 'model_bucket: ""'),
        ('model_bucket: "movies-beta"', 'model_bucket: ""'),
        ('upstream_task_name: "ecr_container_creation"', 'upstream_task_name: "ecr_container_creaton"'),
    )
    code, out, err = main("--project-dir", str(project.root), "validate")
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 3, out
    shared = [line for line in lines if "ecr_container_creaton" in line]
    assert len(shared) == 1 and ERROR_LINE.match(shared[0])  # all environments: printed once, no label
    labelled = sorted(line for line in lines if line.startswith("["))
    assert labelled[0].startswith("[BETA] ") and "no model_bucket for BETA" in labelled[0]
    assert labelled[1].startswith("[PROD] ") and "no model_bucket for PROD" in labelled[1]
    assert ERROR_LINE.match(labelled[1].removeprefix("[PROD] "))
    assert err.startswith("3 errors (2 only in some environments) in 1 file; 1 pipeline valid")
    assert "(envs LOCAL/DEV/BETA/PROD" in err


def test_validate_env_option_narrows_to_one(project: FixtureProject, monkeypatch: pytest.MonkeyPatch) -> None:
    project.edit(FORECAST, ('model_bucket: "movies-prod"', 'model_bucket: ""'))
    root = str(project.root)
    monkeypatch.delenv("ML_PIPELINES_ENV", raising=False)
    assert main("--project-dir", root, "--env", "dev", "validate")[0] == 0
    code, out, err = main("--project-dir", root, "--env", "prod", "validate")
    assert code == 1 and "no model_bucket for PROD" in out and not out.startswith("[") and "(env PROD" in err
    # $ML_PIPELINES_ENV is where runs go; it does not narrow validate
    monkeypatch.setenv("ML_PIPELINES_ENV", "DEV")
    code, out, err = main("--project-dir", root, "validate")
    assert code == 1 and out.startswith("[PROD] ")
    # options may also follow the command
    assert main("validate", "--project-dir", root, "--env", "DEV")[0] == 0


def test_bad_env_variable_is_one_line() -> None:
    result = run("--project-dir", str(PROJECT_OK), "validate", env={"ML_PIPELINES_ENV": "QA"})
    assert result.returncode == 2
    assert result.stderr.strip() == "ml-pipelines: ML_PIPELINES_ENV='QA' is not one of LOCAL, DEV, BETA, PROD"


def test_missing_project_dir(tmp_path: Path) -> None:
    code, out, err = main("--project-dir", str(tmp_path / "nope"), "validate")
    assert code == 2 and "does not exist" in err


def test_list_shows_schedule_kinds_and_upstreams() -> None:
    result = run("--project-dir", str(PROJECT_OK), "list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "demo_dap_testing  schedule: none  (model_configs/dap_testing.yaml)"
    assert "demo_forecast_Daily  schedule: 30 6 * * *  (model_configs/forecast_daily.yml)" in lines
    step = next(line for line in lines if "python_script_workspace_test_table" in line)
    assert "python_script" in step
    assert step.endswith("after: glue_job_processing_script, external_task_dag_status")
    wait = next(line for line in lines if line.strip().startswith("external_task_dag_status"))
    assert wait.split() == ["external_task_dag_status", "external_wait"]


def test_list_prints_the_errors_that_hide_pipelines(project: FixtureProject) -> None:
    project.edit(FORECAST, ('kernel: "python3"', 'kernel: "python4"'))
    code, out, err = main("--project-dir", str(project.root), "list")
    assert code == 1
    assert "demo_dap_testing" in out and "demo_forecast_Daily" not in out
    first, last = err.splitlines()
    assert ERROR_LINE.match(first) and first.startswith(FORECAST) and "python4" in first
    assert last == "1 config error hid some pipelines (env LOCAL)"


def test_plan_unknown_pipeline_has_did_you_mean() -> None:
    result = run("--project-dir", str(PROJECT_OK), "plan", "demo_forecast_daily")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "ml-pipelines: unknown pipeline 'demo_forecast_daily'; did you mean 'demo_forecast_Daily'? "
        "(pipelines: demo_dap_testing, demo_forecast_Daily)"
    ]


def test_plan_of_a_broken_pipeline_says_so(project: FixtureProject) -> None:
    project.edit(FORECAST, ('kernel: "python3"', 'kernel: "python4"'))
    code, out, err = main("--project-dir", str(project.root), "plan", "demo_forecast_Daily")
    assert code == 1 and out == ""
    error, message = err.splitlines()
    assert ERROR_LINE.match(error) and error.startswith(FORECAST) and "python4" in error
    assert "has config errors; run `ml-pipelines validate`" in message


def test_plan_reports_a_step_that_cannot_be_planned_as_a_config_error(project: FixtureProject) -> None:
    """A template that fails only for some dates: the user's mistake, located, exit 1, not an internal error."""
    # fine unless the day ends in 2 (the load renders it for start_date, 2021-03-07)
    project.edit(FORECAST, ('dt: "{{ ds }}"', "dt: \"{{ ds if ds[-1:] != '2' else macros.ds_add(ds, 'x') }}\""))
    code, out, err = main("--project-dir", str(project.root), "plan", "demo_forecast_Daily", "--date", "2024-05-01")
    assert code == 0, err
    code, out, err = main("--project-dir", str(project.root), "plan", "demo_forecast_Daily", "--date", "2024-05-02")
    assert code == 1 and out == ""
    match = ERROR_LINE.match(err.strip())
    assert match, err
    assert match["file"] == FORECAST and "glue_job_processing_script" in match["key"] and "internal error" not in err
    assert "templates_dict.dt" in err


def test_plan_bad_date() -> None:
    code, out, err = main("--project-dir", str(PROJECT_OK), "plan", "demo_forecast_Daily", "--date", "2024-13-01")
    assert code == 2 and "write YYYY-MM-DD" in err


def test_plan_prints_the_resolved_pipeline() -> None:
    result = run("--project-dir", str(PROJECT_OK), "plan", "demo_forecast_Daily", "--date", "2024-05-01")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["pipeline_id"] == "demo_forecast_Daily"
    assert plan["env"] == "LOCAL"
    assert {s["name"] for s in plan["steps"]} >= {"write_to_snowflake", "glue_job_processing_script"}


def test_plan_stores_where_a_run_does(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run(
        "--project-dir",
        str(REPO),
        "plan",
        "max_ds_ViewershipFeatures",
        "--date",
        "2024-01-05",
        env={"ML_PIPELINES_HOME": str(home)},
    )
    assert result.returncode == 0, result.stderr
    steps = {s["name"]: s for s in json.loads(result.stdout)["steps"]}
    raw_path = steps["python_script_land_raw_events"]["parameters"]["raw_path"]  # s3:// in DEV, mapped in LOCAL
    assert raw_path == str(home.resolve() / "storage" / "datascience-ml-pipelines-dev" / "viewership" / "raw_events")
    assert ".ml_pipelines" not in result.stdout


def test_plan_calls_plan_as_dict_with_the_run_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import datetime

    from ml_pipelines import cli_plan

    calls = []

    def plan_as_dict(project, pipeline_id, env, logical_date, *, storage_root):
        calls.append((project.paths.root, pipeline_id, env, logical_date, storage_root))
        return {"pipeline_id": pipeline_id, "when": logical_date}

    monkeypatch.setattr(cli_plan, "plan_as_dict", plan_as_dict)
    monkeypatch.delenv("ML_PIPELINES_STORAGE_ROOT", raising=False)
    monkeypatch.setenv("ML_PIPELINES_HOME", str(tmp_path))
    code, out, err = main(
        "--project-dir", str(PROJECT_OK), "--env", "BETA", "plan", "demo_dap_testing", "--date", "2024-02-29"
    )
    assert code == 0, err
    assert calls == [(PROJECT_OK.resolve(), "demo_dap_testing", "BETA", datetime.date(2024, 2, 29), None)]  # real S3
    assert json.loads(out) == {"pipeline_id": "demo_dap_testing", "when": "2024-02-29"}
    main("--project-dir", str(PROJECT_OK), "plan", "demo_dap_testing", "--date", "2024-02-29")
    assert calls[-1][2:] == ("LOCAL", datetime.date(2024, 2, 29), tmp_path.resolve() / "storage")


def test_internal_errors_are_one_line_never_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    import ml_pipelines.config.loader as loader

    def boom(*args, **kwargs):
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr(loader, "load_project", boom)
    code, out, err = main("--project-dir", str(PROJECT_OK), "validate")
    assert code == 2
    assert err == "ml-pipelines: internal error: RuntimeError: something broke\n"


def test_usage_errors_exit_2() -> None:
    assert main()[0] == 2
    assert main("frobnicate")[0] == 2
    assert main("--env", "QA", "validate")[0] == 2


def test_a_broken_variables_file_is_reported_by_validate_and_plan(project: FixtureProject) -> None:
    project.write("model_configs/variables.yml", "COMMON:\n  CI_STAGING: [unclosed\n")
    code, out, err = main("--project-dir", str(project.root), "validate")
    assert code == 1
    assert out.startswith("model_configs/variables.yml:3: ")
    code, out, err = main("--project-dir", str(project.root), "plan", "demo_dap_testing")
    assert code == 1 and out == "" and "internal error" not in err
    assert err.startswith("model_configs/variables.yml:3: ")


def test_a_closed_pipe_is_not_an_internal_error() -> None:
    """`ml-pipelines plan ... | head -1`: the reader goes away; no error line, exit 141 as a killed pipe."""

    class ClosedPipe(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    err = io.StringIO()
    code = cli.main(["--project-dir", str(PROJECT_OK), "list"], out=ClosedPipe(), err=err)
    assert code == 141 and err.getvalue() == ""


def test_an_error_of_every_environment_that_names_it_is_printed_once(project: FixtureProject) -> None:
    """An undefined variable is reported per environment ("... for environment DEV"): one line."""
    project.edit(FORECAST, ('stage: "{{ var.value.CI_STAGING }}"', 'stage: "{{ var.value.CI_STAGIN }}"'))
    code, out, err = main("--project-dir", str(project.root), "validate")
    assert code == 1
    (line,) = out.splitlines()
    assert ERROR_LINE.match(line), line
    assert "'CI_STAGIN' is not defined for environment LOCAL/DEV/BETA/PROD" in line
    assert err.startswith("1 error in 1 file;")
