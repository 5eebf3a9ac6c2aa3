"""The examples of the config reference, at the schema level (no files involved)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from pydantic import ValidationError

from ml_pipelines.config.schema import (
    GLUE_WORKER_LIMITS,
    KERNELS,
    SCHEDULE_PRESETS,
    ContainerImageStep,
    ExternalWaitStep,
    GlueStep,
    NotebookStep,
    PipelineConfig,
    PythonScriptStep,
    SqlStep,
    StepKind,
    step_kind_of,
)

from .conftest import FORECAST, FixtureProject, line_of

BASE = {"domain": "max", "sub_domain": "job_process", "action": "ForecastDaily"}


def config(**extra) -> PipelineConfig:
    return PipelineConfig.model_validate({**BASE, **extra})


def task(raw: dict):
    return config(tasks=[raw]).tasks[0]


def test_pipeline_id() -> None:
    assert config().pipeline_id == "max_job_process_ForecastDaily"


@pytest.mark.parametrize("preset", SCHEDULE_PRESETS)
def test_schedule_presets(preset: str) -> None:
    assert config(schedule_interval=preset).schedule_interval == preset


@pytest.mark.parametrize("value", [None, "", "None", "null"])
def test_no_schedule(value) -> None:
    assert config(schedule_interval=value).schedule_interval is None


def test_cron_is_kept_normalised() -> None:
    assert config(schedule_interval=" 55  19 * * * ").schedule_interval == "55 19 * * *"


@pytest.mark.parametrize(
    "text,expected",
    [("2020-08-4", date(2020, 8, 4)), ("2020-8-04", date(2020, 8, 4)), (date(2021, 1, 2), date(2021, 1, 2))],
)
def test_start_date_styles(text, expected) -> None:
    assert config(default_args={"start_date": text}).default_args.start_date == expected


@pytest.mark.parametrize(
    "text,message",
    [
        ("0001-01-01", "start_date 0001-01-01 is before 1970-01-01"),
        ("2101-01-01", "start_date 2101-01-01 is after 2100-12-31"),
    ],
)
def test_start_date_out_of_range(text, message) -> None:
    with pytest.raises(ValidationError, match=message):
        config(default_args={"start_date": text})
    assert config(default_args={"start_date": "1970-01-01"}).default_args.start_date == date(1970, 1, 1)
    assert config(default_args={"start_date": "2100-12-31"}).default_args.start_date == date(2100, 12, 31)


def test_default_args_loose_values() -> None:
    args = config(
        default_args={
            "owner": "DAP OPS",
            "depends_on_past": "True",
            "email_prod": ["a@x.com", "b@x.com"],
            "email_nonprod": "c@x.com",
            "email_on_failure": True,
            "email_on_retry": "False",
            "retries": "3",
            "retry_delay": "60 / 4",
            "domain": "sagemaker",
        }
    ).default_args
    assert args.depends_on_past is True and args.email_on_retry is False
    assert args.email_prod == ["a@x.com", "b@x.com"] and args.email_nonprod == ["c@x.com"]
    assert args.retries == 3 and args.retry_delay == 15


def test_defaults() -> None:
    c = config()
    assert c.default_args.depends_on_past is False and c.catchup is False and c.tasks == []
    assert c.max_active_runs is None and c.slack_channel is None


def test_slack_channels() -> None:
    c = config(slack_channel={"NON-PROD": "#dev", "PROD": ""})
    assert c.slack_channel.NON_PROD == "#dev" and c.slack_channel.PROD is None
    c = config(slack_channel={"NON-PROD": None, "PROD": " ds-alerts_prod "})
    assert c.slack_channel.NON_PROD is None and c.slack_channel.PROD == "ds-alerts_prod"


@pytest.mark.parametrize("key", ["NON_PROD", "non-prod", "NONPROD", "Prod"])
def test_slack_channel_keys_are_exact(key: str) -> None:
    with pytest.raises(ValidationError, match="extra_forbidden|Extra inputs"):
        config(slack_channel={key: "#dev"})


@pytest.mark.parametrize("value", ["#forecast dev", "ops@example.com", "#", "a,b"])
def test_slack_channel_value_is_a_channel_name(value: str) -> None:
    with pytest.raises(ValidationError, match="is not a Slack channel name"):
        config(slack_channel={"PROD": value})


def test_schema_key_by_its_alias_only() -> None:
    assert config(schema="ANALYTICS").schema_ == "ANALYTICS"
    with pytest.raises(ValidationError):
        config(schema_="ANALYTICS")


@pytest.mark.parametrize(
    "value,expected",
    [
        ("a@x.com", ["a@x.com"]),
        ("a@x.com, b.c+tag@mail.example.co.uk", ["a@x.com", "b.c+tag@mail.example.co.uk"]),
        ("a@x.com; b@x.com;", ["a@x.com", "b@x.com"]),
        (["a@x.com", "b@x.com, c@x.com", None, ""], ["a@x.com", "b@x.com", "c@x.com"]),
        ("", []),
        (None, []),
        ("None", []),
    ],
)
def test_email_forms(value, expected) -> None:
    args = config(default_args={"email_prod": value, "email_nonprod": value}).default_args
    assert args.email_prod == expected and args.email_nonprod == expected


@pytest.mark.parametrize(
    "value,message",
    [
        ("ds-oncall@example", "'ds-oncall@example' is not an e-mail address (name@domain.tld)"),
        ("a@x.com, bob@", "'bob@' is not an e-mail address"),
        (["ok@x.com", "@x.com", "a..b@x.com"], "'@x.com' and 'a..b@x.com' are not e-mail addresses"),
        ("a@x.com b@x.com", "'a@x.com b@x.com' is not an e-mail address; separate addresses with ',' or ';'"),
        ("a@-x.com", "'a@-x.com' is not an e-mail address"),
        ("a@x.c0m", "'a@x.c0m' is not an e-mail address"),
        ({"to": "a@x.com"}, "expected e-mail addresses"),
    ],
)
@pytest.mark.parametrize("key", ["email_prod", "email_nonprod"])
def test_bad_email_is_named(key: str, value, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        config(default_args={key: value})
    [error] = info.value.errors()
    assert error["loc"] == ("default_args", key)
    assert message in error["msg"]


@pytest.mark.parametrize("owner", ["DAP OPS", "Forecast Team", "dap-admin@example.com", "a@x.com, b@y.org", ""])
def test_owner_team_or_addresses(owner: str) -> None:
    assert config(default_args={"owner": owner}).default_args.owner == owner


@pytest.mark.parametrize("owner,bad", [("bob@", "bob@"), ("a@x.com, b@x", "b@x"), ("@data-team", "@data-team")])
def test_owner_with_at_must_be_an_address(owner: str, bad: str) -> None:
    with pytest.raises(ValidationError, match=f"'{bad}' is not an e-mail address.*team name without '@'"):
        config(default_args={"owner": owner})


# -- as the loader reports them: file, line, key, message ---------------------------------------
@pytest.mark.parametrize("key,suggested", [("NON_PROD", "NON-PROD"), ("non-prod", "NON-PROD"), ("NONPROD", "NON-PROD")])
def test_slack_channel_typo_is_located_with_a_suggestion(project: FixtureProject, key: str, suggested: str) -> None:
    text = project.edit(FORECAST, ('NON-PROD: "#forecast-dev"', f'{key}: "#forecast-dev"'))
    [error] = project.load().errors
    assert str(error) == (
        f"{FORECAST}:{line_of(text, key + ':')}: dags.sagemaker.slack_channel.{key}: "
        f"unknown key {key!r}; did you mean {suggested!r}?"
    )


def test_slack_channel_prod_typo_is_located_with_a_suggestion(project: FixtureProject) -> None:
    text = project.edit(FORECAST, ('PROD: ""\n', 'Prod: ""\n'))
    [error] = project.load().errors
    assert str(error) == (
        f"{FORECAST}:{line_of(text, 'Prod:')}: dags.sagemaker.slack_channel.Prod: unknown key 'Prod'; did you mean 'PROD'?"
    )


def test_valid_slack_channels_load(project: FixtureProject) -> None:
    project.edit(FORECAST, ('PROD: ""\n', 'PROD: "forecast-alerts"\n'))
    loaded = project.load()
    assert loaded.ok, [str(e) for e in loaded.errors]
    channels = next(p for p in loaded.pipelines if p.source.name == "forecast_daily.yml").config.slack_channel
    assert (channels.NON_PROD, channels.PROD) == ("#forecast-dev", "forecast-alerts")


def test_bad_email_is_located(project: FixtureProject) -> None:
    text = project.edit(FORECAST, ('"forecast-ops@example.com"', '"ds-oncall@example"'))
    [error] = project.load().errors
    assert str(error) == (
        f"{FORECAST}:{line_of(text, 'email_prod:')}: dags.sagemaker.default_args.email_prod: "
        "'ds-oncall@example' is not an e-mail address (name@domain.tld)"
    )


def test_bad_owner_is_located(project: FixtureProject) -> None:
    text = project.edit(FORECAST, ('owner: "Forecast Team"', 'owner: "bob@"'))
    [error] = project.load().errors
    assert str(error) == (
        f"{FORECAST}:{line_of(text, 'owner:')}: dags.sagemaker.default_args.owner: "
        "'bob@' is not an e-mail address (name@domain.tld); an owner is an e-mail address or a team name without '@'"
    )


@pytest.mark.parametrize(
    "raw,kind",
    [
        ({"name": "ecr_container_creation"}, StepKind.CONTAINER_IMAGE),
        ({"name": "sagemaker_notebook_job_processing_script"}, StepKind.NOTEBOOK),
        ({"name": "sagemaker_notebook_job_processing_script_v2"}, StepKind.NOTEBOOK),
        ({"name": "write_to_snowflake", "sql_file_names": ["a.sql"]}, StepKind.SQL),
        ({"name": "write_to_snowflake_2", "sql_file_names": "a.sql"}, StepKind.SQL),
        ({"name": "glue_job_processing_script", "Details": {"script_name": "s", "script_loc": "model"}}, StepKind.GLUE),
        ({"name": "python_script_x", "script_name": "s"}, StepKind.PYTHON_SCRIPT),
        (
            {"name": "anything", "type": "ExternalTaskSensor", "external_dag_details": {"external_dag_id": "d"}},
            StepKind.EXTERNAL_WAIT,
        ),
    ],
)
def test_step_kinds(raw, kind) -> None:
    assert step_kind_of(raw) == kind.value
    assert task(raw).kind is kind


@pytest.mark.parametrize("kernel", KERNELS)
def test_every_kernel(kernel: str) -> None:
    step = task({"name": "ecr_container_creation", "kernel": kernel})
    assert isinstance(step, ContainerImageStep) and step.kernel == kernel


def test_container_defaults() -> None:
    step = task({"name": "ecr_container_creation", "requirements_file_name": ""})
    assert step.kernel == "python3" and step.requirements_file_name is None


def test_notebook_defaults_and_buckets() -> None:
    step = task(
        {
            "name": "sagemaker_notebook_job_processing_script",
            "notebook_name": "",
            "Details": {"instance_type": "ml.m5.large", "instance_count": 1},
            "templates_dict": None,
            "BucketIOConfig": {"DEV": {"model_bucket": "dev-b"}, "BETA": None, "PROD": {"model_bucket": ""}},
        }
    )
    assert isinstance(step, NotebookStep)
    assert step.notebook_name == "" and step.param_file_name is None
    assert step.Details.volume_size_InGB == 40
    assert step.templates_dict == {}
    assert step.BucketIOConfig["DEV"].model_bucket == "dev-b"
    assert step.BucketIOConfig["BETA"].model_bucket is None
    assert step.BucketIOConfig["PROD"].model_bucket is None


@pytest.mark.parametrize(
    "model_type,expected", [("", "sagemaker"), (None, "sagemaker"), ("glue", "glue"), ("Glue", "glue")]
)
def test_sql_model_type(model_type, expected) -> None:
    step = task({"name": "write_to_snowflake", "model_type": model_type, "sql_file_names": ["a.sql", "b.sql"]})
    assert isinstance(step, SqlStep) and step.model_type == expected and step.sql_file_names == ["a.sql", "b.sql"]


@pytest.mark.parametrize("worker", ["Standard", "standard", "G.1X", "G.2X"])
def test_glue_worker_types(worker: str) -> None:
    step = task(
        {
            "name": "glue_job_processing_script",
            "Details": {"script_name": "s", "script_loc": "common", "worker_type": worker, "number_of_workers": "10"},
        }
    )
    assert isinstance(step, GlueStep)
    assert step.Details.worker_type in GLUE_WORKER_LIMITS and step.Details.number_of_workers == 10


@pytest.mark.parametrize("worker,count", [("G.1X", 299), ("G.2X", 149), ("Standard", 500)])
def test_glue_worker_caps_at_the_limit(worker: str, count: int) -> None:
    details = task(
        {
            "name": "glue_job_processing_script",
            "Details": {"script_name": "s", "script_loc": "model", "worker_type": worker, "number_of_workers": count},
        }
    ).Details
    assert details.number_of_workers == count


@pytest.mark.parametrize("worker,count", [("G.1X", 300), ("G.2X", 150)])
def test_glue_worker_caps_exceeded(worker: str, count: int) -> None:
    with pytest.raises(ValidationError, match="exceeds"):
        task(
            {
                "name": "glue_job_processing_script",
                "Details": {
                    "script_name": "s",
                    "script_loc": "model",
                    "worker_type": worker,
                    "number_of_workers": count,
                },
            }
        )


@pytest.mark.parametrize(
    "raw,poke,timeout,delta",
    [
        (
            {"poke_interval": "60 * 5", "timeout": None, "execution_delta": "timedelta(hours=0, minutes=0)"},
            300,
            60,
            timedelta(0),
        ),
        (
            {"poke_interval": 30, "timeout": "3600", "execution_delta": "timedelta(hours=1)"},
            30,
            3600,
            timedelta(hours=1),
        ),
        ({"poke_interval": "2 * 60 + 30", "execution_delta": "datetime.timedelta(days=1)"}, 150, 60, timedelta(days=1)),
        ({"execution_delta": "timedelta(minutes=90)"}, 60, 60, timedelta(minutes=90)),
        ({"execution_delta": "3600"}, 60, 60, timedelta(hours=1)),
    ],
)
def test_external_wait_loose_values(raw, poke, timeout, delta) -> None:
    step = task(
        {
            "name": "wait",
            "type": "ExternalTaskSensor",
            "external_dag_details": {"external_dag_id": "max_conviva_DQ", **raw},
        }
    )
    assert isinstance(step, ExternalWaitStep)
    d = step.external_dag_details
    assert (d.poke_interval, d.timeout, d.execution_delta) == (poke, timeout, delta)


@pytest.mark.parametrize(
    "states,expected",
    [
        ("success,failed", ["success", "failed"]),
        ("success, running ,failed", ["success", "running", "failed"]),
        (["failed"], ["failed"]),
        ("", ["success"]),
        (None, ["success"]),
    ],
)
def test_allowed_states(states, expected) -> None:
    step = task(
        {
            "name": "w",
            "type": "ExternalTaskSensor",
            "external_dag_details": {"external_dag_id": "d", "allowed_states": states},
        }
    )
    assert step.external_dag_details.allowed_states == expected


@pytest.mark.parametrize("task_id", ["None", None, "", "null"])
def test_external_task_id_none_means_whole_pipeline(task_id) -> None:
    step = task(
        {
            "name": "w",
            "type": "ExternalTaskSensor",
            "external_dag_details": {"external_dag_id": "d", "external_task_id": task_id},
        }
    )
    assert step.external_dag_details.external_task_id is None


@pytest.mark.parametrize("mode", ["poke", "reschedule", "Poke"])
def test_modes(mode: str) -> None:
    step = task(
        {"name": "w", "type": "ExternalTaskSensor", "external_dag_details": {"external_dag_id": "d", "mode": mode}}
    )
    assert step.external_dag_details.mode == mode.lower()


@pytest.mark.parametrize(
    "text",
    ["__import__('os').system('x')", "open('/etc/passwd').read()", "lambda: 1", "[1] * 10", "2 ** 8", "x", "True"],
)
def test_python_looking_values_are_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        task(
            {
                "name": "w",
                "type": "ExternalTaskSensor",
                "external_dag_details": {"external_dag_id": "d", "poke_interval": text},
            }
        )


def test_python_script_step() -> None:
    step = task(
        {
            "name": "python_script_workspace_test_table",
            "model_type": "glue",
            "script_loc": "model",
            "script_name": "data_validation_v1",
            "param_file_name": "data_validations",
        }
    )
    assert isinstance(step, PythonScriptStep)
    assert (step.model_type, step.script_loc, step.script_name, step.param_file_name) == (
        "glue",
        "model",
        "data_validation_v1",
        "data_validations",
    )


def test_upstream_forms() -> None:
    c = config(
        tasks=[
            {"name": "ecr_container_creation"},
            {"name": "sagemaker_notebook_job_processing_script", "upstream_task_name": "ecr_container_creation"},
            {
                "name": "python_script_a",
                "script_name": "a",
                "upstream_task_name": ["ecr_container_creation", "sagemaker_notebook_job_processing_script"],
            },
            {
                "name": "python_script_b",
                "script_name": "b",
                "upstream_task_name": "ecr_container_creation, python_script_a",
            },
            {"name": "python_script_c", "script_name": "c", "upstream_task_name": ""},
        ]
    )
    assert [t.upstream_task_name for t in c.tasks] == [
        [],
        ["ecr_container_creation"],
        ["ecr_container_creation", "sagemaker_notebook_job_processing_script"],
        ["ecr_container_creation", "python_script_a"],
        [],
    ]


@pytest.mark.parametrize("raw", [{"instance_count": 0}, {"volume_size_InGB": 0}, {"instance_count": "1.5"}])
def test_notebook_details_limits(raw) -> None:
    with pytest.raises(ValidationError):
        task({"name": "sagemaker_notebook_job_processing_script", "Details": raw})
