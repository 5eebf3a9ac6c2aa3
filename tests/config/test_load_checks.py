"""What a run in the load's environment would fail on is a config error at load: templates
(templates_dict and SQL files) dry-rendered, parameter files resolved for the env,
variables.yml read; and where a plan-time failure of a loaded pipeline is reported."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest

from ml_pipelines.config.errors import ConfigError
from ml_pipelines.config.loader import load_project
from ml_pipelines.config.parameters import ParameterFileError, resolve_parameters
from ml_pipelines.config.session import LoadSession
from ml_pipelines.config.templates import TemplateRenderError, render, sample_window, template_context

from .conftest import DAP, FORECAST, FixtureProject, assert_error, line_of

NB = "dags.sagemaker.tasks[1](sagemaker_notebook_job_processing_script)"
NB2 = "dags.sagemaker.tasks[2](sagemaker_notebook_job_processing_script_v2)"
SQL = "dags.sagemaker.tasks[3](write_to_snowflake)"
FORECAST_ID = "demo_forecast_Daily"
VARIABLES = "model_configs/variables.yml"
CHECK_COUNTS = "Sagemaker_Models/Forecast/pipeline/check_counts.sql"


@pytest.fixture(autouse=True)
def _no_variable_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ML_PIPELINES_VAR_CI_STAGING", raising=False)


def _dev_only_variables(project: FixtureProject) -> None:
    project.write(VARIABLES, "DEV:\n  CI_STAGING: DEV_STAGE\n")


def test_variable_missing_for_prod_only_fails_prod_only(project: FixtureProject) -> None:
    _dev_only_variables(project)
    dev = project.load("DEV")
    assert [str(e) for e in dev.errors] == []
    assert FORECAST_ID in dev.pipeline_ids
    prod = project.load("PROD")
    error = assert_error(
        prod.errors,
        file=FORECAST,
        line=line_of(project.read(FORECAST), "stage: "),
        key=f"{SQL}.templates_dict.stage",
        contains="variable 'CI_STAGING' is not defined for environment PROD: add CI_STAGING: <value> under PROD: "
        "(or COMMON:) in model_configs/variables.yml, or set the environment variable ML_PIPELINES_VAR_CI_STAGING",
    )
    assert len(prod.errors) == 1, error
    assert FORECAST_ID not in prod.pipeline_ids
    assert FORECAST_ID in prod.invalid_pipeline_ids


def test_environment_variable_defines_a_missing_variable(
    project: FixtureProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    _dev_only_variables(project)
    monkeypatch.setenv("ML_PIPELINES_VAR_CI_STAGING", "FROM_ENV")
    assert [str(e) for e in project.load("PROD").errors] == []


def test_unknown_macro_and_other_pipelines_still_load(project: FixtureProject) -> None:
    text = project.edit(FORECAST, ('dt: "{{ macros.ds_add(ds, 1) }}"', 'dt: "{{ macros.ds_ad(ds, 1) }}"'))
    loaded = project.load()
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, "macros.ds_ad("),
        key=f"{NB}.templates_dict.dt",
        contains="undefined: macros.ds_ad does not exist; did you mean 'ds_add'? (macros: ",
    )
    assert loaded.pipeline_ids == ["demo_dap_testing"]  # dap_testing.yaml's pipeline


def test_sandbox_violation_is_a_config_error(project: FixtureProject) -> None:
    text = project.edit(FORECAST, ('perc: "{{ 80 }}"', "perc: \"{{ ''.__class__ }}\""))
    loaded = project.load()
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, "perc: "),
        key=f"{SQL}.templates_dict.perc",
        contains="not allowed in a template: access to attribute '__class__' of 'str' object is unsafe",
    )


def test_undefined_name_gets_a_did_you_mean_and_macro_errors_name_the_date(project: FixtureProject) -> None:
    text = project.edit(
        FORECAST,
        ('dt: "{{ ds }}"', 'dt: "{{ ds_nodsh }}"'),
        ('yr: "{{ macros.yr(macros.ds_add(ds, 1)) }}"', "yr: \"{{ macros.ds_format(ds, '%d', '%Y') }}\""),
    )
    errors = project.load().errors
    assert_error(
        errors,
        file=FORECAST,
        line=line_of(text, "ds_nodsh"),
        key="dags.sagemaker.tasks[4](glue_job_processing_script).templates_dict.dt",
        contains="undefined: 'ds_nodsh' is undefined; did you mean 'ds_nodash'?",
    )
    # the first partition of "30 6 * * *" from 2021-3-7
    assert_error(
        errors,
        file=FORECAST,
        line=line_of(text, "macros.ds_format"),
        key=f"{NB}.templates_dict.yr",
        contains="ValueError: unconverted data remains: 21-03-07 (rendered at load for LOCAL with ds = 2021-03-07)",
    )


def test_sql_file_undefined_name_names_file_and_line(project: FixtureProject) -> None:
    project.write(CHECK_COUNTS, "-- {{ stage }} {{ params.perc }}\nSELECT 1\nFROM t WHERE d = '{{ stag }}';\n")
    loaded = project.load()
    error = assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(project.read(FORECAST), '- "check_counts"'),
        key=f"{SQL}.sql_file_names[1]",
        contains=f"SQL file {CHECK_COUNTS}, line 3: undefined: 'stag' is undefined; did you mean 'stage'?",
    )
    assert len(loaded.errors) == 1, error  # stage and params.perc (templates_dict) are defined


def test_sql_file_sees_params_of_the_step(project: FixtureProject) -> None:
    project.write(CHECK_COUNTS, "SELECT {{ params.stage }},\n  {{ params.nope }};\n")
    loaded = project.load("PROD")
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(project.read(FORECAST), '- "check_counts"'),
        key=f"{SQL}.sql_file_names[1]",
        contains=f"SQL file {CHECK_COUNTS}, line 2: undefined: 'dict object' has no attribute 'nope'",
    )


def test_multiline_template_value_names_its_line(project: FixtureProject) -> None:
    project.edit(FORECAST, ('perc: "{{ 80 }}"', "perc: \"{{ 80 }}\\n{{ macros.yr('soon') }}\""))
    assert_error(
        project.load().errors,
        file=FORECAST,
        line=line_of(project.read(FORECAST), "perc: "),
        key=f"{SQL}.templates_dict.perc",
        contains="line 2: ValueError: 'soon' is not a YYYY-MM-DD date",
    )


def test_parameter_file_without_the_env_section(project: FixtureProject) -> None:
    params = "Sagemaker_Models/Forecast/test.json"
    data = json.loads(project.read(params))
    del data["PROD"]
    project.write(params, json.dumps(data, indent=2))
    default = "Sagemaker_Models/Forecast/parameters.json"  # NB2's, implicit: reported at the step
    data = json.loads(project.read(default))
    del data["PROD"]
    project.write(default, json.dumps(data, indent=2))
    text = project.edit(FORECAST, ('param_file_name: "DailyForecast_V2.json"', 'param_file_name: ""'))
    for env in ("LOCAL", "DEV", "BETA"):
        assert [str(e) for e in project.load(env).errors] == [], env
    errors = project.load("PROD").errors
    assert_error(
        errors,
        file=FORECAST,
        line=line_of(text, 'param_file_name: "test"'),
        key=f"{NB}.param_file_name",
        contains=f"parameter file {params}:1: no PROD section (the file has DEV, BETA): a step in PROD reads "
        'COMMON plus the PROD section; add "PROD": {} (an empty object is fine)',
    )
    assert_error(
        errors,
        file=FORECAST,
        line=line_of(text, "sagemaker_notebook_job_processing_script_v2"),
        key=NB2,
        contains=f"parameter file {default}:1: no PROD section",
    )


def test_local_fallback_that_leaves_storage_is_an_error(project: FixtureProject) -> None:
    params = "Sagemaker_Models/Forecast/test.json"
    data = json.loads(project.read(params))
    del data["LOCAL"]
    data["DEV"]["input_path"] = "s3://b/../../../etc"
    project.write(params, json.dumps(data, indent=2))
    assert_error(
        project.load().errors,
        file=FORECAST,
        line=line_of(project.read(FORECAST), 'param_file_name: "test"'),
        key=f"{NB}.param_file_name",
        contains="LOCAL has no section and falls back to DEV: 's3://b/../../../etc' points outside",
    )
    assert [str(e) for e in project.load("DEV").errors] == []


def test_one_reader_for_load_and_run(project: FixtureProject) -> None:
    """A file the load rejects is rejected by a run too, with the same message."""
    path = project.write("Sagemaker_Models/Forecast/test.json", '{\n  "COMMON": {"a": 1, "a": 2}\n}\n')
    assert_error(
        project.load().errors,
        file=FORECAST,
        line=line_of(project.read(FORECAST), 'param_file_name: "test"'),
        key=f"{NB}.param_file_name",
        contains="parameter file Sagemaker_Models/Forecast/test.json:2: key 'a' is written twice",
    )
    with pytest.raises(ParameterFileError, match=r"test.json:2: key 'a' is written twice"):
        resolve_parameters(path, "DEV")


def test_shared_session_gives_each_env_its_own_results(project: FixtureProject) -> None:
    _dev_only_variables(project)
    session = LoadSession()
    results = {env: load_project(project.root, env, session) for env in ("DEV", "PROD", "BETA", "DEV")}
    prod = load_project(project.root, "PROD", session)
    assert [str(e) for e in results["DEV"].errors] == []
    assert FORECAST_ID in results["DEV"].pipeline_ids
    for other in (prod, results["BETA"]):
        assert [e.key_path for e in other.errors] == [f"{SQL}.templates_dict.stage"]
        assert f"environment {other.env}" in other.errors[0].message


def test_broken_variables_file_is_reported_once(project: FixtureProject) -> None:
    project.write(VARIABLES, "DEV:\n  CI_STAGING: [unclosed\n")
    loaded = project.load("DEV")
    assert [e.display_path for e in loaded.errors] == [VARIABLES]
    assert str(loaded.errors[0]).startswith(f"{VARIABLES}:3: YAML syntax error")
    assert list(loaded.broken) == [project.path(VARIABLES)]


def test_fixture_and_shipped_configs_load_in_every_env(project: FixtureProject) -> None:
    for env in ("LOCAL", "DEV", "BETA", "PROD"):
        loaded = project.load(env)
        assert [str(e) for e in loaded.errors] == [], env
        assert len(loaded.pipelines) == 2


def test_sample_window_is_the_first_partition_or_a_fixed_day() -> None:
    utc = timezone.utc
    first = sample_window("30 6 * * *", date(2021, 3, 7))
    assert (first.start, first.end) == (
        datetime(2021, 3, 7, 6, 30, tzinfo=utc),
        datetime(2021, 3, 8, 6, 30, tzinfo=utc),
    )
    weekly = sample_window("@weekly", date(2024, 1, 2))  # a Tuesday: the first Sunday after
    assert (weekly.start, weekly.end) == (datetime(2024, 1, 7, tzinfo=utc), datetime(2024, 1, 14, tzinfo=utc))
    hourly = sample_window("@hourly", date(2024, 5, 1))
    assert (hourly.start, hourly.end) == (datetime(2024, 5, 1, tzinfo=utc), datetime(2024, 5, 1, 1, tzinfo=utc))
    for unpartitioned in (sample_window(None, date(2021, 1, 1)), sample_window("@daily", None)):
        assert unpartitioned.start == datetime(2024, 1, 1, tzinfo=utc)
        assert unpartitioned.end == datetime(2024, 1, 2, tzinfo=utc)


# -- where a plan-time failure of a loaded pipeline is reported -----------------------------
def test_locate_and_error_at(project: FixtureProject) -> None:
    loaded = project.load()
    text = project.read(FORECAST)
    pipeline = loaded.pipeline(FORECAST_ID)
    file, line, key = pipeline.locate("write_to_snowflake", "templates_dict", "stage")
    assert (file, line, key) == (project.path(FORECAST), line_of(text, "stage: "), f"{SQL}.templates_dict.stage")
    assert pipeline.locate("write_to_snowflake", "sql_file_names", "check_counts")[1:] == (
        line_of(text, '- "check_counts"'),
        f"{SQL}.sql_file_names[1]",
    )
    assert pipeline.locate("write_to_snowflake")[1] == line_of(text, '- name: "write_to_snowflake"')
    # not recorded: the nearest recorded parent's line, the full key path
    assert pipeline.locate("write_to_snowflake", "templates_dict", "nope")[1:] == (
        line_of(text, "templates_dict:", 2),
        f"{SQL}.templates_dict.nope",
    )
    error = pipeline.error_at("write_to_snowflake", ("templates_dict", "stage"), "boom")
    assert str(error) == f"{FORECAST}:{line_of(text, 'stage: ')}: {SQL}.templates_dict.stage: boom"
    glue = loaded.pipeline("demo_dap_testing")
    assert glue.locate("write_to_snowflake_movies")[0] == project.path(DAP)


def test_error_for_plan_time_failures(project: FixtureProject) -> None:
    loaded = project.load()
    text = project.read(FORECAST)
    pipeline = loaded.pipeline(FORECAST_ID)
    context = template_context(None, "PROD", {}, {"params": {}})
    with pytest.raises(TemplateRenderError) as exc:
        render("select 1\n{{ nope }}", context, where="step write_to_snowflake, check_counts", key="check_counts")
    error = pipeline.error_for("write_to_snowflake", exc.value)
    assert isinstance(error, ConfigError)
    sql_line = line_of(text, '- "check_counts"')
    assert str(error) == (
        f"{FORECAST}:{sql_line}: {SQL}.sql_file_names[1]: SQL file {CHECK_COUNTS}, "
        "line 2: undefined: 'nope' is undefined; templates know ds, ts, data_interval_start, data_interval_end, "
        "macros, var, ENV and more (a SQL file also sees the step's templates_dict keys and params)"
    )
    with pytest.raises(TemplateRenderError) as exc:
        render("{{ var.value.X }}", context, where="w", step="write_to_snowflake", key="stage")
    error = pipeline.error_for("write_to_snowflake", exc.value)
    assert (error.line, error.key_path) == (line_of(text, "stage: "), f"{SQL}.templates_dict.stage")
    assert error.message.startswith("variable 'X' is not defined for environment PROD")
    path = project.write("Sagemaker_Models/Forecast/test.json", "{,}")
    with pytest.raises(ParameterFileError) as exc:
        resolve_parameters(path, "DEV")
    error = pipeline.error_for("sagemaker_notebook_job_processing_script", exc.value)
    param_line = line_of(text, 'param_file_name: "test"')
    assert str(error) == (
        f"{FORECAST}:{param_line}: {NB}.param_file_name: parameter file "
        "Sagemaker_Models/Forecast/test.json:1: invalid JSON: Expecting property name enclosed in double quotes "
        "(column 2)"
    )
    error = pipeline.error_for("sagemaker_notebook_job_processing_script_v2", ValueError("no image"))
    assert (error.line, error.key_path, error.message) == (
        line_of(text, "sagemaker_notebook_job_processing_script_v2"),
        NB2,
        "no image",
    )
