"""A config written exactly like the big example of the old generator's README validates clean."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from ml_pipelines.config.schema import GlueStep, StepKind

from .conftest import FixtureProject
from .readme_example import REFERENCE_README, readme_config

pytestmark = pytest.mark.skipif(
    not REFERENCE_README.is_file(), reason=f"reference README not found at {REFERENCE_README}"
)


def _write_example(project: FixtureProject) -> str:
    text = readme_config(
        REFERENCE_README.read_text(), model_name="Forecast", glue_model_name="movies", bucket="readme-example-bucket"
    )
    project.only()  # the example alone
    project.write("model_configs/readme_example.yml", text)
    return text


@pytest.mark.parametrize("env", ["LOCAL", "DEV", "BETA", "PROD"])
def test_readme_example_validates_clean(project: FixtureProject, env: str) -> None:
    _write_example(project)
    loaded = project.load(env)
    assert [str(e) for e in loaded.errors] == []
    assert loaded.pipeline_ids == ["max_job_process_ForecastDaily"]


def test_readme_example_values_are_normalised(project: FixtureProject) -> None:
    _write_example(project)
    pipeline = project.load().pipeline("max_job_process_ForecastDaily")
    config = pipeline.config
    assert pipeline.common["warehouse"] == "DS_WH"  # CommonConf came through the nested include
    assert config.default_args.start_date == date(2020, 8, 4)
    assert config.default_args.depends_on_past is True
    assert config.default_args.email_prod == ["DAPOperationsSupport@hbo.com"]
    assert config.schedule_interval == "55 19 * * *"
    assert [t.kind for t in config.tasks] == [
        StepKind.CONTAINER_IMAGE,
        StepKind.NOTEBOOK,
        StepKind.SQL,
        StepKind.GLUE,
        StepKind.EXTERNAL_WAIT,
        StepKind.PYTHON_SCRIPT,
    ]
    glue = config.step("glue_job_processing_script")
    assert isinstance(glue, GlueStep) and glue.Details.number_of_workers == 10
    wait = config.step("external_task_dag_status").external_dag_details
    assert wait.poke_interval == 300
    assert wait.timeout == 60
    assert wait.allowed_states == ["success", "failed"]
    assert wait.execution_delta == timedelta(0)
    sql = config.step("write_to_snowflake")
    assert sql.model_type == "sagemaker"
    files = pipeline.files
    assert files["sagemaker_notebook_job_processing_script"].main.name == "DailyForecast.ipynb"
    assert files["sagemaker_notebook_job_processing_script"].parameter_file.name == "test.json"
    assert files["write_to_snowflake"].sql_files[0].name == "sample.sql"
    assert files["python_script_workspace_test_table"].parameter_file.name == "data_validations.json"
    assert files["glue_job_processing_script"].main.name == "movies-test.py"


def test_readme_example_with_tabs_kept_is_a_located_yaml_error(project: FixtureProject) -> None:
    """Tabs left in (as the README shows them) give one clear line, not a traceback."""
    text = _write_example(project)
    lines = text.splitlines()
    index = next(i for i, line in enumerate(lines) if line.strip().startswith("kernel:"))
    lines[index] = "\t" + lines[index].lstrip()
    project.write("model_configs/readme_example.yml", "\n".join(lines) + "\n")
    errors = project.load().errors
    assert len(errors) == 1
    assert errors[0].line == index + 1
    assert "tab" in errors[0].message


def test_readme_parameter_example_is_a_valid_parameter_file(project: FixtureProject) -> None:
    from ml_pipelines.config.checks import parameter_file_problems

    from .readme_example import parameter_example

    path = project.write("Sagemaker_Models/Forecast/test.json", parameter_example(REFERENCE_README.read_text()))
    assert parameter_file_problems(path, "test.json") == []
    _write_example(project)
    assert [str(e) for e in project.load("PROD").errors] == []
