"""Every class of config defect: one clear error naming the file, the line and the key.

Each test edits a copy of the fixture project, loads it, and asserts the error's file
(relative to the project), line and dotted key path, and what the message says.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import DAP, FORECAST, FixtureProject, assert_error, line_of

NB = "dags.sagemaker.tasks[1](sagemaker_notebook_job_processing_script)"
NB2 = "dags.sagemaker.tasks[2](sagemaker_notebook_job_processing_script_v2)"
SQL = "dags.sagemaker.tasks[3](write_to_snowflake)"
GLUE = "dags.sagemaker.tasks[4](glue_job_processing_script)"
WAIT = "dags.sagemaker.tasks[5](external_task_dag_status)"
PY = "dags.sagemaker.tasks[6](python_script_workspace_test_table)"
CONTAINER = "dags.sagemaker.tasks[0](ecr_container_creation)"


def edit_and_load(project: FixtureProject, *pairs: tuple[str, str], rel: str = FORECAST, env: str = "LOCAL"):
    text = project.edit(rel, *pairs)
    loaded = project.load(env)
    return text, loaded


def assert_forecast_rejected(loaded) -> None:
    """The broken pipeline is dropped; the other file's pipeline still loads."""
    assert "demo_forecast_Daily" not in loaded.pipeline_ids
    assert "demo_dap_testing" in loaded.pipeline_ids
    assert loaded.broken and all(p.name == "forecast_daily.yml" for p in loaded.broken)


# -- YAML level ------------------------------------------------------------------------------
def test_yaml_syntax_error(project: FixtureProject) -> None:
    text, loaded = edit_and_load(project, ("    max_active_runs: 1\n", "    max_active_runs: [1\n"))
    assert len(loaded.errors) == 1
    error = loaded.errors[0]
    assert error.display_path == FORECAST and error.key_path == ""
    assert line_of(text, "max_active_runs") <= error.line <= line_of(text, "max_active_runs") + 2
    assert str(error).startswith(f"{FORECAST}:{error.line}: YAML syntax error")
    assert_forecast_rejected(loaded)


def test_duplicate_key(project: FixtureProject) -> None:
    text, loaded = edit_and_load(project, ("    catchup: False\n", "    catchup: False\n    catchup: True\n"))
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, "catchup: True"),
        key="dags.sagemaker.catchup",
        contains="duplicate key 'catchup'",
    )
    assert_forecast_rejected(loaded)


def test_include_missing(project: FixtureProject) -> None:
    text, loaded = edit_and_load(project, ("common/snowflake_common_config.yml", "common/nope.yml"))
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, "CommonConf"),
        key="CommonConf",
        contains="included file model_configs/common/nope.yml not found",
    )
    assert_forecast_rejected(loaded)


def test_include_cycle(project: FixtureProject) -> None:
    project.write("model_configs/common/account_loop.yml", "name: x\nback: !include snowflake_common_config.yml\n")
    project.edit("model_configs/common/snowflake_common_config.yml", ("snowflake_account.yml", "account_loop.yml"))
    loaded = project.load()
    # both configs include the fragment: each file gets the error, located in the fragment
    error = assert_error(
        loaded.errors,
        file="model_configs/common/account_loop.yml",
        line=2,
        key="CommonConf.account.back",
        contains="!include cycle: model_configs/common/snowflake_common_config.yml -> "
        "model_configs/common/account_loop.yml -> model_configs/common/snowflake_common_config.yml",
    )
    assert error
    assert loaded.pipelines == []


def test_include_escape(project: FixtureProject) -> None:
    text, loaded = edit_and_load(project, ("common/snowflake_common_config.yml", "../../outside.yml"))
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, "CommonConf"),
        key="CommonConf",
        contains="points outside model_configs/",
    )


def test_error_inside_an_included_fragment_names_the_fragment(project: FixtureProject) -> None:
    fragment = (
        "# the task list lives in a fragment\n"
        "- name: python_script_only\n"
        "  script_loc: common\n"
        "  script_nme: table_checks\n"
    )
    project.write("model_configs/common/tasks.yml", fragment)
    text = project.read(DAP)
    head = text[: text.index("    tasks:")]
    project.write(DAP, head + "    tasks: !include common/tasks.yml\n")
    loaded = project.load()
    assert_error(
        loaded.errors,
        file="model_configs/common/tasks.yml",
        line=4,
        key="dags.sagemaker.tasks[0](python_script_only).script_nme",
        contains="unknown key 'script_nme' for a Python script step; did you mean 'script_name'?",
    )
    assert "demo_forecast_Daily" in loaded.pipeline_ids


def test_alias_bomb(project: FixtureProject) -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    project.write("model_configs/bomb.yml", "\n".join(lines) + "\n")
    loaded = project.load()
    assert len(loaded.errors) == 1
    error = loaded.errors[0]
    assert error.display_path == "model_configs/bomb.yml" and error.line is not None
    assert "alias bomb" in error.message
    assert len(loaded.pipelines) == 2


def test_oversize_file(project: FixtureProject) -> None:
    project.write("model_configs/huge.yml", "# " + "x" * (1024 * 1024 + 1) + "\n")
    loaded = project.load()
    error = loaded.errors[0]
    assert str(error).startswith("model_configs/huge.yml:1: file is ")
    assert len(loaded.pipelines) == 2


# -- schema: keys, types, literals -------------------------------------------------------------
def test_unknown_key_with_did_you_mean(project: FixtureProject) -> None:
    text, loaded = edit_and_load(project, ('instance_count: "1"', 'instance_cnt: "1"'))
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, "instance_cnt"),
        key=f"{NB}.Details.instance_cnt",
        contains="unknown key 'instance_cnt'; did you mean 'instance_count'?",
    )
    assert_forecast_rejected(loaded)


def test_unknown_key_without_suggestion_lists_the_allowed(project: FixtureProject) -> None:
    text, loaded = edit_and_load(project, ("    catchup: False\n", "    catchup: False\n    colour: blue\n"))
    error = assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, "colour"),
        key="dags.sagemaker.colour",
        contains="unknown key 'colour'; allowed keys: domain, sub_domain, action",
    )
    assert "schema" in error.message and "tasks" in error.message


def test_key_of_another_step_kind(project: FixtureProject) -> None:
    text, loaded = edit_and_load(
        project,
        (
            '        notebook_name: "DailyForecast"\n',
            '        notebook_name: "DailyForecast"\n        kernel: python3\n',
        ),
    )
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, "kernel: python3"),
        key=f"{NB}.kernel",
        contains="unknown key 'kernel' for a notebook step",
    )


def test_unknown_top_level_key(project: FixtureProject) -> None:
    text, loaded = edit_and_load(project, ("CommonConf:", "CommonConfig:"))
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, "CommonConfig"),
        key="CommonConfig",
        contains="unknown top-level key 'CommonConfig'; did you mean 'CommonConf'?",
    )
    assert_forecast_rejected(loaded)


def test_missing_dags(project: FixtureProject) -> None:
    project.write("model_configs/nodags.yml", "CommonConf: {a: 1}\n")
    error = assert_error(
        project.load().errors,
        file="model_configs/nodags.yml",
        line=1,
        key="dags",
        contains="missing required key 'dags'",
    )
    assert error


@pytest.mark.parametrize(
    "old,new,key,contains",
    [
        ('instance_count: "1"', "instance_count: [1]", f"{NB}.Details.instance_count", "expected a number"),
        (
            "    catchup: False\n",
            "    catchup: maybe\n",
            "dags.sagemaker.catchup",
            "expected true or false, got the text 'maybe'",
        ),
        (
            "        Details:\n          instance_type",
            "        Details: big\n        Detailz:\n          instance_type",
            f"{NB}.Details",
            "expected a mapping of keys, got the text 'big'",
        ),
        ('      retries: "2"', '      retries: "two"', "dags.sagemaker.default_args.retries", "not a number"),
        (
            "    max_active_runs: 1",
            "    max_active_runs: 0",
            "dags.sagemaker.max_active_runs",
            "must be at least 1, got 0",
        ),
    ],
)
def test_wrong_type(project: FixtureProject, old: str, new: str, key: str, contains: str) -> None:
    text, loaded = edit_and_load(project, (old, new))
    line = line_of(text, new.strip().splitlines()[0].strip())
    assert_error(loaded.errors, file=FORECAST, line=line, key=key, contains=contains)
    assert_forecast_rejected(loaded)


@pytest.mark.parametrize(
    "old,new,key,contains",
    [
        (
            'kernel: "python3"',
            'kernel: "python4"',
            f"{CONTAINER}.kernel",
            "value 'python4' is not allowed; did you mean 'python3'? (allowed: python3, python2, tensorflow2_p36",
        ),
        (
            'worker_type: "G.1X"',
            'worker_type: "G.3X"',
            f"{GLUE}.Details.worker_type",
            "unknown worker type 'G.3X'; allowed: Standard, G.025X, G.1X, G.2X",
        ),
        (
            'script_loc: "model"\n          param',
            'script_loc: "modle"\n          param',
            f"{GLUE}.Details.script_loc",
            "value 'modle' is not allowed; did you mean 'model'? (allowed: model, common)",
        ),
        (
            'mode: "reschedule"',
            'mode: "wait"',
            f"{WAIT}.external_dag_details.mode",
            "value 'wait' is not allowed (allowed: poke, reschedule)",
        ),
        (
            'allowed_states: "success,failed"',
            'allowed_states: "success,done"',
            f"{WAIT}.external_dag_details.allowed_states",
            "value 'done' is not allowed (allowed: success, running, failed)",
        ),
        (
            'model_type: "glue"',
            'model_type: "emr"',
            f"{PY}.model_type",
            "value 'emr' is not allowed (allowed: sagemaker, glue)",
        ),
        (
            '          DEV:\n            model_bucket: "movies-dev"',
            '          DEVV:\n            model_bucket: "movies-dev"',
            f"{GLUE}.BucketIOConfig.DEVV",
            "key 'DEVV' is not allowed; did you mean 'DEV'?",
        ),
    ],
)
def test_bad_literal(project: FixtureProject, old: str, new: str, key: str, contains: str) -> None:
    text, loaded = edit_and_load(project, (old, new))
    line = line_of(text, new.splitlines()[0].strip())
    assert_error(loaded.errors, file=FORECAST, line=line, key=key, contains=contains)
    assert_forecast_rejected(loaded)


def test_missing_required_key_says_which_and_what_is_allowed(project: FixtureProject) -> None:
    text, loaded = edit_and_load(project, ('          script_loc: "model"\n', ""))
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, "Details:", occurrence=2),
        key=f"{GLUE}.Details.script_loc",
        contains="missing required key 'script_loc'; allowed values: model, common",
    )


def test_missing_domain(project: FixtureProject) -> None:
    text, loaded = edit_and_load(project, ('    sub_domain: "forecast"\n', ""))
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, "  sagemaker:"),
        key="dags.sagemaker.sub_domain",
        contains="missing required key 'sub_domain'",
    )


def test_pipeline_id_part_with_a_space(project: FixtureProject) -> None:
    text, loaded = edit_and_load(project, ('action: "Daily"', 'action: "Daily run"'))
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, "action:"),
        key="dags.sagemaker.action",
        contains="may hold only letters, digits and '_'",
    )


# -- loose values ---------------------------------------------------------------------------------
def test_python_looking_text_is_refused_and_never_run(project: FixtureProject, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = f"__import__('os').system('touch {marker}')"
    text, loaded = edit_and_load(project, ("poke_interval: 60 * 5", f'poke_interval: "{payload}"'))
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, "poke_interval"),
        key=f"{WAIT}.external_dag_details.poke_interval",
        contains="write seconds as a number, arithmetic like 60 * 5",
    )
    assert not marker.exists()


@pytest.mark.parametrize(
    "old,new,key,contains",
    [
        (
            "execution_delta: timedelta(hours=1, minutes=30)",
            "execution_delta: timedelta(fortnights=1)",
            "execution_delta",
            "unit 'fortnights' unknown",
        ),
        (
            "execution_delta: timedelta(hours=1, minutes=30)",
            "execution_delta: os.system('x')",
            "execution_delta",
            "only timedelta",
        ),
        ("poke_interval: 60 * 5", "poke_interval: 60 ** 50", "poke_interval", "not a number or arithmetic"),
        ("poke_interval: 60 * 5", "poke_interval: 0", "poke_interval", "must be greater than 0"),
        ("poke_interval: 60 * 5", "poke_interval: 1 / 0", "poke_interval", "division by zero"),
    ],
)
def test_bad_loose_values(project: FixtureProject, old: str, new: str, key: str, contains: str) -> None:
    text, loaded = edit_and_load(project, (old, new))
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, new),
        key=f"{WAIT}.external_dag_details.{key}",
        contains=contains,
    )


# -- AWS limits, cron, dates -------------------------------------------------------------------------
@pytest.mark.parametrize("worker,count,limit", [("G.1X", "300", 299), ("G.2X", "150", 149)])
def test_worker_cap(project: FixtureProject, worker: str, count: str, limit: int) -> None:
    text, loaded = edit_and_load(
        project,
        ('worker_type: "G.1X"', f'worker_type: "{worker}"'),
        ('number_of_workers: "10"', f'number_of_workers: "{count}"'),
    )
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, "number_of_workers"),
        key=f"{GLUE}.Details.number_of_workers",
        contains=f"{count} workers exceeds {limit}, the maximum for worker type {worker}",
    )


def test_worker_type_is_case_insensitive(project: FixtureProject) -> None:
    _, loaded = edit_and_load(project, ('worker_type: "G.1X"', 'worker_type: "standard"'))
    assert loaded.errors == []
    assert (
        loaded.pipeline("demo_forecast_Daily").config.step("glue_job_processing_script").Details.worker_type
        == "Standard"
    )


@pytest.mark.parametrize(
    "old,new,key",
    [
        ('instance_count: "1"', "instance_count: 0", "instance_count"),
        ("volume_size_InGB: 30", "volume_size_InGB: 0", "volume_size_InGB"),
    ],
)
def test_instance_count_and_volume_at_least_one(project: FixtureProject, old: str, new: str, key: str) -> None:
    text, loaded = edit_and_load(project, (old, new))
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, new),
        key=f"{NB}.Details.{key}",
        contains="must be at least 1, got 0",
    )


@pytest.mark.parametrize(
    "cron,contains",
    [
        ("61 6 * * *", "cron minute value '61' is outside 0-59"),
        ("30 6 * *", "has 4 fields; write 5"),
        ("@sometimes", "unknown preset '@sometimes'"),
    ],
)
def test_bad_cron(project: FixtureProject, cron: str, contains: str) -> None:
    text, loaded = edit_and_load(project, ('schedule_interval: "30 6 * * *"', f'schedule_interval: "{cron}"'))
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, "schedule_interval"),
        key="dags.sagemaker.schedule_interval",
        contains=contains,
    )


@pytest.mark.parametrize("value", ['"2021-13-07"', '"yesterday"', '""'])
def test_bad_start_date(project: FixtureProject, value: str) -> None:
    text, loaded = edit_and_load(project, ('start_date: "2021-3-7"', f"start_date: {value}"))
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, "start_date"),
        key="dags.sagemaker.default_args.start_date",
        contains="date",
    )


# -- steps and the upstream graph --------------------------------------------------------------------
def test_unknown_step_kind_with_suggestion(project: FixtureProject) -> None:
    text, loaded = edit_and_load(project, ('- name: "write_to_snowflake"', '- name: "write_to_snowflak"'))
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, 'write_to_snowflak"'),
        key="dags.sagemaker.tasks[3](write_to_snowflak)",
        contains="cannot tell the step kind of 'write_to_snowflak': a step name must start with one of ecr_container_creation",
    )
    assert "did you mean a name starting with 'write_to_snowflake'?" in str(loaded.errors)


def test_sensor_type_misspelt(project: FixtureProject) -> None:
    text, loaded = edit_and_load(project, ('type: "ExternalTaskSensor"', 'type: "ExternalTaskSenser"'))
    error = assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, "external_task_dag_status"),
        key=WAIT,
        contains="did you mean type: ExternalTaskSensor?",
    )
    assert error


def test_task_that_is_not_a_mapping(project: FixtureProject) -> None:
    text, loaded = edit_and_load(project, ("    tasks:\n", "    tasks:\n      - just_a_name\n"))
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, "- just_a_name"),
        key="dags.sagemaker.tasks[0]",
        contains="each task must be a mapping",
    )


def test_unknown_upstream_with_did_you_mean(project: FixtureProject) -> None:
    text, loaded = edit_and_load(
        project, ('upstream_task_name: "ecr_container_creation"', 'upstream_task_name: "ecr_container_creaton"')
    )
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, "ecr_container_creaton"),
        key=f"{NB}.upstream_task_name",
        contains="unknown upstream step 'ecr_container_creaton'; did you mean 'ecr_container_creation'?",
    )


def test_unknown_upstream_in_a_list_points_at_the_item(project: FixtureProject) -> None:
    text, loaded = edit_and_load(
        project, ('          - "external_task_dag_status"', '          - "external_task_dag_stat"')
    )
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, '- "external_task_dag_stat"'),
        key=f"{PY}.upstream_task_name[1]",
        contains="did you mean 'external_task_dag_status'?",
    )


def test_graph_errors_come_with_schema_errors(project: FixtureProject) -> None:
    """All errors of a file at once: a schema error does not hide an upstream error."""
    _, loaded = edit_and_load(
        project,
        ('upstream_task_name: "ecr_container_creation"', 'upstream_task_name: "nope"'),
        ('instance_count: "1"', "instance_count: 0"),
    )
    keys = {e.key_path for e in loaded.errors}
    assert f"{NB}.upstream_task_name" in keys and f"{NB}.Details.instance_count" in keys


def test_duplicate_step_name(project: FixtureProject) -> None:
    text, loaded = edit_and_load(
        project,
        ('- name: "sagemaker_notebook_job_processing_script_v2"', '- name: "sagemaker_notebook_job_processing_script"'),
    )
    line = line_of(text, '- name: "sagemaker_notebook_job_processing_script"', occurrence=2)
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line,
        key="dags.sagemaker.tasks[2](sagemaker_notebook_job_processing_script).name",
        contains="duplicate step name 'sagemaker_notebook_job_processing_script' (also tasks[1]",
    )


def test_upstream_cycle_is_named(project: FixtureProject) -> None:
    text, loaded = edit_and_load(
        project,
        ('        upstream_task_name: ""\n', '        upstream_task_name: "python_script_workspace_test_table"\n'),
    )
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, 'upstream_task_name: "python_script_workspace_test_table"'),
        key=f"{WAIT}.upstream_task_name",
        contains="upstream cycle: external_task_dag_status -> python_script_workspace_test_table -> external_task_dag_status",
    )


def test_self_dependency(project: FixtureProject) -> None:
    text, loaded = edit_and_load(
        project, ('        upstream_task_name: ""\n', '        upstream_task_name: "external_task_dag_status"\n')
    )
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, 'upstream_task_name: "external_task_dag_status"'),
        key=f"{WAIT}.upstream_task_name",
        contains="lists itself as upstream",
    )


def test_no_tasks(project: FixtureProject) -> None:
    text = project.read(DAP)
    project.write(DAP, text[: text.index("    tasks:")] + "    tasks: []\n")
    loaded = project.load()
    assert_error(
        loaded.errors,
        file=DAP,
        line=line_of(project.read(DAP), "tasks:"),
        key="dags.sagemaker.tasks",
        contains="at least one task",
    )


# -- files ---------------------------------------------------------------------------------------------
def test_missing_notebook(project: FixtureProject) -> None:
    text, loaded = edit_and_load(project, ('notebook_name: "DailyForecast"', 'notebook_name: "WeeklyForecast"'))
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, "WeeklyForecast"),
        key=f"{NB}.notebook_name",
        contains="notebook Sagemaker_Models/Forecast/WeeklyForecast.ipynb not found",
    )
    assert_forecast_rejected(loaded)


def test_invalid_nbformat(project: FixtureProject) -> None:
    project.write(
        "Sagemaker_Models/Forecast/DailyForecast.ipynb",
        '{"cells": "nope", "nbformat": 4, "nbformat_minor": 5, "metadata": {}}',
    )
    text = project.read(FORECAST)
    loaded = project.load()
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, 'notebook_name: "DailyForecast"'),
        key=f"{NB}.notebook_name",
        contains="notebook Sagemaker_Models/Forecast/DailyForecast.ipynb is not a valid Jupyter notebook",
    )


def test_notebook_that_is_not_json(project: FixtureProject) -> None:
    project.write("Sagemaker_Models/Forecast/DailyForecast.ipynb", "print('hello')\n")
    loaded = project.load()
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(project.read(FORECAST), 'notebook_name: "DailyForecast"'),
        key=f"{NB}.notebook_name",
        contains="not a Jupyter notebook (invalid JSON",
    )


def test_parameter_file_bad_json(project: FixtureProject) -> None:
    project.write("Sagemaker_Models/Forecast/test.json", '{\n  "DEV": {\n    "a": 1,\n  }\n}\n')
    loaded = project.load()
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(project.read(FORECAST), 'param_file_name: "test"'),
        key=f"{NB}.param_file_name",
        contains="parameter file Sagemaker_Models/Forecast/test.json:4: invalid JSON",
    )


def test_parameter_file_unknown_and_missing_sections(project: FixtureProject) -> None:
    project.write(
        "Sagemaker_Models/Forecast/parameters.json",
        '{\n  "DEV": {"a": 1},\n  "PRD": {"a": 2},\n  "COMMON": {"--b": 1}\n}\n',
    )
    # the v2 notebook now uses the default parameters.json: the error points at the task itself
    text = project.edit(FORECAST, ('param_file_name: "DailyForecast_V2.json"', 'param_file_name: ""'))
    loaded = project.load()
    line = line_of(text, "sagemaker_notebook_job_processing_script_v2")
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line,
        key=NB2,
        contains="parameters.json:3: unknown section 'PRD'; did you mean 'PROD'?",
    )
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line,
        key=NB2,
        contains="COMMON.--b: write parameter names without leading '-'",
    )


def test_parameter_file_section_not_an_object(project: FixtureProject) -> None:
    project.write("Glue_Models/movies/data_validations.json", '{"COMMON": [1, 2]}')
    loaded = project.load()
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(project.read(FORECAST), 'param_file_name: "data_validations"'),
        key=f"{PY}.param_file_name",
        contains="section COMMON must be an object",
    )


def test_named_parameter_file_missing(project: FixtureProject) -> None:
    text, loaded = edit_and_load(project, ('param_file_name: "test"', 'param_file_name: "tset"'))
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, "tset"),
        key=f"{NB}.param_file_name",
        contains="parameter file Sagemaker_Models/Forecast/tset.json not found",
    )


def test_named_requirements_file_missing(project: FixtureProject) -> None:
    text, loaded = edit_and_load(
        project, ('        requirements_file_name: ""\n', '        requirements_file_name: "gpu_requirements"\n')
    )
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, "gpu_requirements"),
        key=f"{CONTAINER}.requirements_file_name",
        contains="requirements file Sagemaker_Models/Forecast/gpu_requirements.txt not found",
    )


def test_missing_sql_file(project: FixtureProject) -> None:
    text, loaded = edit_and_load(project, ('- "check_counts"', '- "check_count"'))
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, '- "check_count"'),
        key=f"{SQL}.sql_file_names[1]",
        contains="SQL file Sagemaker_Models/Forecast/pipeline/check_count.sql not found",
    )


def test_missing_glue_script(project: FixtureProject) -> None:
    text, loaded = edit_and_load(project, ('script_name: "movies-test"', 'script_name: "movies-tst"'))
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, "movies-tst"),
        key=f"{GLUE}.Details.script_name",
        contains="Glue script Glue_Models/movies/movies-tst.py not found",
    )


def test_missing_common_glue_script(project: FixtureProject) -> None:
    text, loaded = edit_and_load(project, ("script_name: shared_dedupe", "script_name: shared_dedup"), rel=DAP)
    assert_error(
        loaded.errors,
        file=DAP,
        line=line_of(text, "shared_dedup"),
        key="dags.sagemaker.tasks[0](glue_job_processing_script_dedupe).Details.script_name",
        contains="common Glue script Glue_Models/common/shared_dedup.py not found",
    )


def test_missing_python_script(project: FixtureProject) -> None:
    text, loaded = edit_and_load(project, ('script_name: "data_validation_v1"', 'script_name: "data_validation_v2"'))
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, "data_validation_v2"),
        key=f"{PY}.script_name",
        contains="Python script Glue_Models/movies/python_scripts/data_validation_v2.py not found",
    )


def test_missing_common_python_script(project: FixtureProject) -> None:
    project.remove("Py_Models/table_checks.py")
    loaded = project.load()
    assert_error(
        loaded.errors,
        file=DAP,
        line=line_of(project.read(DAP), "script_name: table_checks"),
        key="dags.sagemaker.tasks[2](python_script_table_checks).script_name",
        contains="common Python script Py_Models/table_checks.py not found",
    )


def test_missing_model_folder(project: FixtureProject) -> None:
    text, loaded = edit_and_load(project, ('model_name: "Forecast"', 'model_name: "Forecst"'))
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, "model_name:"),
        key="dags.sagemaker.model_name",
        contains="model folder Sagemaker_Models/Forecst does not exist",
    )


def test_blank_model_name_needed_by_a_notebook(project: FixtureProject) -> None:
    text, loaded = edit_and_load(project, ('model_name: "Forecast"', 'model_name: ""'))
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, "model_name:"),
        key="dags.sagemaker.model_name",
        contains="model_name is blank, but step 'sagemaker_notebook_job_processing_script' (notebook) needs a folder",
    )


@pytest.mark.parametrize(
    "old,new,key,contains",
    [
        (
            'notebook_name: "DailyForecast"',
            'notebook_name: "../../secrets"',
            f"{NB}.notebook_name",
            "must not contain '..'",
        ),
        ('- "check_counts"', '- "/etc/passwd"', f"{SQL}.sql_file_names[1]", "not an absolute path"),
        (
            'model_name: "Forecast"',
            'model_name: "../Glue_Models/movies"',
            "dags.sagemaker.model_name",
            "must not contain '..'",
        ),
        (
            'param_file_name: "data_validations"',
            'param_file_name: "..\\\\x"',
            f"{PY}.param_file_name",
            "use '/' between folders",
        ),
    ],
)
def test_names_cannot_escape_their_folder(project: FixtureProject, old: str, new: str, key: str, contains: str) -> None:
    text, loaded = edit_and_load(project, (old, new))
    assert_error(
        loaded.errors, file=FORECAST, line=line_of(text, new.split(":")[-1].strip()), key=key, contains=contains
    )


def test_symlink_out_of_the_folder(project: FixtureProject, tmp_path: Path) -> None:
    outside = tmp_path / "outside.sql"
    outside.write_text("select 1;\n")
    (project.path("Sagemaker_Models/Forecast/pipeline/check_counts.sql")).unlink()
    project.path("Sagemaker_Models/Forecast/pipeline/check_counts.sql").symlink_to(outside)
    loaded = project.load()
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(project.read(FORECAST), '- "check_counts"'),
        key=f"{SQL}.sql_file_names[1]",
        contains="Sagemaker_Models/Forecast/pipeline/check_counts.sql is a symlink to",
    )


# -- templates ----------------------------------------------------------------------------------------
def test_template_syntax_error_in_templates_dict(project: FixtureProject) -> None:
    pytest.importorskip("ml_pipelines.config.templates")
    text, loaded = edit_and_load(project, ('perc: "{{ 80 }}"', 'perc: "{{ 80 }"'))
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, "perc:"),
        key=f"{SQL}.templates_dict.perc",
        contains="template syntax error",
    )


def test_template_syntax_error_in_a_sql_file(project: FixtureProject) -> None:
    pytest.importorskip("ml_pipelines.config.templates")
    project.write("Sagemaker_Models/Forecast/pipeline/check_counts.sql", "SELECT 1;\n{% if ds %}\nSELECT 2;\n")
    loaded = project.load()
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(project.read(FORECAST), '- "check_counts"'),
        key=f"{SQL}.sql_file_names[1]",
        contains="SQL file Sagemaker_Models/Forecast/pipeline/check_counts.sql: template syntax error",
    )


# -- environments ---------------------------------------------------------------------------------------
def test_bucket_required_for_cloud_envs(project: FixtureProject) -> None:
    text = project.edit(FORECAST, ('model_bucket: "movies-beta"', 'model_bucket: ""'))
    assert project.load("LOCAL").errors == []
    assert project.load("DEV").errors == []
    loaded = project.load("BETA")
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(text, 'model_bucket: ""'),
        key=f"{GLUE}.BucketIOConfig.BETA.model_bucket",
        contains="no model_bucket for BETA",
    )


def test_bucket_section_missing_for_an_env(project: FixtureProject) -> None:
    text = project.edit(DAP, ("          PROD: {model_bucket: dap-prod}\n", ""))
    loaded = project.load("PROD")
    assert_error(
        loaded.errors,
        file=DAP,
        line=line_of(text, "BucketIOConfig:"),
        key="dags.sagemaker.tasks[0](glue_job_processing_script_dedupe).BucketIOConfig.PROD.model_bucket",
        contains="no model_bucket for PROD",
    )


# -- across files ------------------------------------------------------------------------------------------
def test_duplicate_pipeline_id_across_files(project: FixtureProject) -> None:
    text = project.edit(DAP, ("sub_domain: dap", "sub_domain: forecast"), ("action: testing", "action: Daily"))
    loaded = project.load()
    # dap_testing.yaml sorts first, so the forecast file holds the later definition
    forecast_text = project.read(FORECAST)
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(forecast_text, "  sagemaker:"),
        key="dags.sagemaker",
        contains=f"pipeline id 'demo_forecast_Daily' (domain_sub_domain_action) is already defined in {DAP}:{line_of(text, '  sagemaker:')}",
    )
    assert loaded.pipeline_ids == ["demo_forecast_Daily"]
    assert loaded.pipeline("demo_forecast_Daily").source.name == "dap_testing.yaml"


def test_one_broken_pipeline_does_not_hide_the_other_in_the_same_file(project: FixtureProject) -> None:
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
        "        colour: red\n"
    )
    project.write(FORECAST, text.replace("\ndags:\n", "\ndags:\n" + extra, 1))
    loaded = project.load()
    assert_error(
        loaded.errors,
        file=FORECAST,
        line=line_of(project.read(FORECAST), "colour: red"),
        key="dags.second.tasks[0](python_script_only).colour",
        contains="unknown key 'colour'",
    )
    assert loaded.pipeline_ids == ["demo_dap_testing", "demo_forecast_Daily"]
    assert "demo_forecast_Second" in loaded.invalid_pipeline_ids


def test_all_errors_of_a_file_are_reported_together(project: FixtureProject) -> None:
    _, loaded = edit_and_load(
        project,
        ('kernel: "python3"', 'kernel: "python4"'),
        ('instance_count: "1"', 'instance_cnt: "1"'),
        ('mode: "reschedule"', 'mode: "wait"'),
        ("    catchup: False\n", "    catchup: False\n    catchup: True\n"),
    )
    errors = loaded.broken[project.path(FORECAST)]
    assert len(errors) == 4
    assert [e.line for e in errors] == sorted(e.line for e in errors)


def test_a_pipeline_that_is_not_a_mapping(project: FixtureProject) -> None:
    project.write("model_configs/scalar.yml", "dags:\n  sagemaker: just text\n")
    assert_error(
        project.load().errors,
        file="model_configs/scalar.yml",
        line=2,
        key="dags.sagemaker",
        contains="a pipeline must be a mapping",
    )


def test_empty_config_file(project: FixtureProject) -> None:
    project.write("model_configs/empty.yml", "# nothing yet\n")
    errors = project.load().errors
    assert [str(e) for e in errors] == ["model_configs/empty.yml:1: the file is empty; expected CommonConf and dags"]
