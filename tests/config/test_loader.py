"""load_project on the fixture project: what loads, how values are normalised, the Project API."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from ml_pipelines.config.loader import LoadedPipeline, load_project
from ml_pipelines.config.schema import (
    ContainerImageStep,
    ExternalWaitStep,
    GlueStep,
    NotebookStep,
    PythonScriptStep,
    SqlStep,
    StepKind,
)

from .conftest import FORECAST, PROJECT_OK, FixtureProject, line_of


@pytest.fixture(scope="module")
def ok_project():
    return load_project(PROJECT_OK)


def test_fixture_project_loads_clean(ok_project) -> None:
    assert [str(e) for e in ok_project.errors] == []
    assert ok_project.broken == {}
    # stable order: by file name, then order in the file
    assert ok_project.pipeline_ids == ["demo_dap_testing", "demo_forecast_Daily"]
    assert [p.name for p in ok_project.config_files] == ["dap_testing.yaml", "forecast_daily.yml"]


@pytest.mark.parametrize("env", ["LOCAL", "DEV", "BETA", "PROD", "dev"])
def test_fixture_project_is_clean_in_every_env(env: str) -> None:
    project = load_project(PROJECT_OK, env=env)
    assert project.errors == [] and project.env == env.upper()


def test_unknown_env_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown environment"):
        load_project(PROJECT_OK, env="QA")


def test_loaded_pipeline_fields(ok_project) -> None:
    loaded = ok_project.pipeline("demo_forecast_Daily")
    assert isinstance(loaded, LoadedPipeline)
    assert loaded.family == "sagemaker"
    assert loaded.source == PROJECT_OK / FORECAST
    text = (PROJECT_OK / FORECAST).read_text()
    assert loaded.line == line_of(text, "  sagemaker:")
    assert loaded.common == {
        "account": {"name": "example-account", "region": "us-east-1"},
        "warehouse": "DS_WH",
        "database": "DATASCIENCE",
        "role": "DS_ROLE",
    }
    assert set(loaded.files) == {t.name for t in loaded.config.tasks}


def test_every_step_kind_and_normalised_values(ok_project) -> None:
    config = ok_project.pipeline("demo_forecast_Daily").config
    kinds = {t.name: t.kind for t in config.tasks}
    assert kinds == {
        "ecr_container_creation": StepKind.CONTAINER_IMAGE,
        "sagemaker_notebook_job_processing_script": StepKind.NOTEBOOK,
        "sagemaker_notebook_job_processing_script_v2": StepKind.NOTEBOOK,
        "write_to_snowflake": StepKind.SQL,
        "glue_job_processing_script": StepKind.GLUE,
        "external_task_dag_status": StepKind.EXTERNAL_WAIT,
        "python_script_workspace_test_table": StepKind.PYTHON_SCRIPT,
    }
    args = config.default_args
    assert args.start_date == date(2021, 3, 7)  # "2021-3-7"
    assert args.retries == 2  # "2"
    assert args.email_nonprod == ["forecast-dev@example.com", "second@example.com"]  # comma list
    assert config.schema_ == "FORECASTS"
    assert config.slack_channel.NON_PROD == "#forecast-dev" and config.slack_channel.PROD is None

    container = config.step("ecr_container_creation")
    assert isinstance(container, ContainerImageStep) and container.requirements_file_name is None
    notebook = config.step("sagemaker_notebook_job_processing_script")
    assert isinstance(notebook, NotebookStep)
    assert notebook.Details.instance_count == 1 and notebook.Details.volume_size_InGB == 30
    assert notebook.BucketIOConfig["DEV"].model_bucket == "forecast-dev"
    assert notebook.upstream_task_name == ["ecr_container_creation"]
    sql = config.step("write_to_snowflake")
    assert isinstance(sql, SqlStep) and sql.model_type == "sagemaker"  # "" -> default
    assert sql.upstream_task_name == [
        "sagemaker_notebook_job_processing_script",
        "sagemaker_notebook_job_processing_script_v2",
    ]
    glue = config.step("glue_job_processing_script")
    assert isinstance(glue, GlueStep)
    assert glue.Details.number_of_workers == 10 and glue.Details.param_file_name is None
    wait = config.step("external_task_dag_status")
    assert isinstance(wait, ExternalWaitStep)
    details = wait.external_dag_details
    assert details.external_task_id is None  # "None"
    assert details.poke_interval == 300  # 60 * 5
    assert details.timeout == 60  # blank -> default
    assert details.execution_delta == timedelta(hours=1, minutes=30)
    assert details.allowed_states == ["success", "failed"]
    assert details.mode == "reschedule"
    assert wait.upstream_task_name == []
    script = config.step("python_script_workspace_test_table")
    assert isinstance(script, PythonScriptStep) and script.model_type == "glue"


def test_unscheduled_pipeline_and_common_scripts(ok_project) -> None:
    loaded = ok_project.pipeline("demo_dap_testing")
    config = loaded.config
    assert config.schedule_interval is None
    assert config.default_args.start_date == date(2022, 1, 15)  # an unquoted YAML date
    wait = config.step("wait_for_forecast").external_dag_details
    assert wait.poke_interval == 120 and wait.timeout == 3600
    assert wait.execution_delta == timedelta(days=1)
    assert config.step("glue_job_processing_script_dedupe").Details.worker_type == "G.2X"


def test_files_of_each_step(ok_project) -> None:
    root = PROJECT_OK
    files = ok_project.pipeline("demo_forecast_Daily").files
    forecast = root / "Sagemaker_Models/Forecast"
    movies = root / "Glue_Models/movies"
    assert files["ecr_container_creation"].model_dir == forecast
    assert files["ecr_container_creation"].requirements_file == forecast / "requirements.txt"
    nb = files["sagemaker_notebook_job_processing_script"]
    assert nb.main == forecast / "DailyForecast.ipynb"
    assert nb.parameter_file == forecast / "test.json"
    assert nb.requirements_file == forecast / "requirements.txt"  # from the container step
    assert nb.lib_dir == forecast / "lib"
    nb2 = files["sagemaker_notebook_job_processing_script_v2"]
    assert nb2.main == forecast / "DailyForecast_V2.ipynb"
    assert nb2.parameter_file == forecast / "DailyForecast_V2.json"
    assert files["write_to_snowflake"].sql_files == (
        forecast / "pipeline/sample.sql",
        forecast / "pipeline/check_counts.sql",
    )
    glue = files["glue_job_processing_script"]
    assert glue.main == movies / "movies-test.py"
    assert glue.parameter_file == movies / "parameters.json"
    assert glue.requirements_file == movies / "requirements.txt"
    assert glue.lib_dir == movies / "lib"
    script = files["python_script_workspace_test_table"]
    assert script.main == movies / "python_scripts/data_validation_v1.py"
    assert script.parameter_file == movies / "data_validations.json"
    assert files["external_task_dag_status"].main is None

    dap = ok_project.pipeline("demo_dap_testing").files
    common = root / "Glue_Models/common"
    shared = dap["glue_job_processing_script_dedupe"]
    assert shared.main == common / "shared_dedupe.py"
    assert shared.model_dir == common / "shared_dedupe"
    assert shared.parameter_file == common / "shared_dedupe/parameters.json"
    assert shared.requirements_file is None  # default, absent: fine
    assert shared.lib_dir == common / "shared_dedupe/lib"
    assert shared.py_files == (common / "shared_dedupe/helpers.py",)
    assert dap["write_to_snowflake_movies"].sql_files == (movies / "pipeline/load_movies.sql",)
    checks = dap["python_script_table_checks"]
    assert checks.main == root / "Py_Models/table_checks.py"
    assert checks.parameter_file == root / "Py_Models/table_checks/parameters.json"
    assert checks.requirements_file == root / "Py_Models/table_checks/requirements.txt"


def test_pipeline_lookup_unknown_id_has_did_you_mean(ok_project) -> None:
    with pytest.raises(KeyError) as info:
        ok_project.pipeline("demo_forecast_daily")
    assert "did you mean 'demo_forecast_Daily'" in str(info.value)


def test_variables_and_common_files_are_not_configs(project: FixtureProject) -> None:
    # variables.yml and model_configs/common/ would fail as pipeline configs; they are skipped
    loaded = project.load()
    assert loaded.errors == []
    assert all(p.name != "variables.yml" for p in loaded.config_files)


def test_missing_model_configs_folder(tmp_path: Path) -> None:
    project = load_project(tmp_path)
    assert len(project.errors) == 1 and "no model_configs/" in project.errors[0].message
    assert project.pipelines == []


def test_project_dir_from_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_PIPELINES_PROJECT_DIR", str(PROJECT_OK))
    assert load_project().pipeline_ids == ["demo_dap_testing", "demo_forecast_Daily"]


def test_two_pipelines_in_one_file(project: FixtureProject) -> None:
    text = project.read(FORECAST)
    extra = (
        "  second:\n"
        "    domain: demo\n"
        "    sub_domain: forecast\n"
        "    action: Second\n"
        "    tasks:\n"
        "      - name: python_script_only\n"
        "        script_loc: common\n"
        "        script_name: table_checks\n"
    )
    project.write(FORECAST, text.replace("\ndags:\n", "\ndags:\n" + extra, 1))
    loaded = project.load()
    assert loaded.errors == []
    assert loaded.pipeline_ids == ["demo_dap_testing", "demo_forecast_Second", "demo_forecast_Daily"]
    assert loaded.pipeline("demo_forecast_Second").family == "second"
