"""The config side of waits (pure, no Dagster): the new keys, where a wait's awaited pipeline
runs, which steps wait, and what `validate` and the load warn about."""

from __future__ import annotations

import io
import logging

import pytest
from pydantic import ValidationError

from ml_pipelines import cli
from ml_pipelines.config.loader import load_project
from ml_pipelines.config.schema import ExternalDagDetails
from ml_pipelines.config.waits import steps_after_waits, wait_source, wait_warnings
from tests.factory.conftest import REPO
from tests.waits.conftest import UP, details, location, write_project


def test_source_and_asset_keys():
    assert ExternalDagDetails(external_dag_id="x").source is None
    assert ExternalDagDetails(external_dag_id="x", source=" Airflow ").source == "airflow"
    keys = ExternalDagDetails(external_dag_id="x", source="dagster", asset_keys="team/table").asset_keys
    assert keys == ["team/table"]
    with pytest.raises(ValidationError, match="asset_keys is for source: dagster"):
        ExternalDagDetails(external_dag_id="x", asset_keys=["a/b"])
    with pytest.raises(ValidationError, match="needs asset_keys"):
        ExternalDagDetails(external_dag_id="x", source="dagster")
    with pytest.raises(ValidationError):
        ExternalDagDetails(external_dag_id="x", source="mwaa")


@pytest.mark.parametrize(
    ("source", "dag_id", "airflow", "expected"),
    [
        (None, "here", False, "this"),
        (None, "elsewhere", True, "airflow"),
        (None, "elsewhere", False, "unknown"),
        ("dagster", "here", True, "dagster"),
        ("airflow", "here", False, "airflow"),
    ],
)
def test_default_source(source, dag_id, airflow, expected):
    details_ = ExternalDagDetails(external_dag_id=dag_id, external_task_id="t", source=source)
    assert wait_source(details_, {"here"}, airflow) == expected


def test_steps_after_waits(tmp_path):
    project = load_project(write_project(tmp_path), env="LOCAL")
    config = next(p for p in project.pipelines if p.pipeline_id != UP).config
    assert steps_after_waits(config) == {
        "python_script_after": frozenset({"wait_up"}),
        "python_script_last": frozenset({"wait_up"}),
    }


def test_an_unknown_id_warns_in_validate_and_at_load(tmp_path, caplog):
    root = write_project(tmp_path, details(external_dag_id="t_upp_Daily"))
    project = load_project(root, env="LOCAL")
    (warning,) = wait_warnings(project, airflow_configured=False)
    text = str(warning)
    assert text.startswith("model_configs/down.yml:")
    assert "'t_upp_Daily' is not a pipeline of this project; did you mean 't_up_Daily'?" in text
    assert "never satisfied on its own" in text
    assert wait_warnings(project, airflow_configured=True) == []  # then it is an Airflow DAG
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["--project-dir", str(root), "validate"], out=out, err=err) == 0
    assert "warning: 't_upp_Daily' is not a pipeline" in out.getvalue() and err.getvalue().startswith("OK:")
    with caplog.at_level(logging.WARNING, logger="ml_pipelines.waits"):
        location(root)
    assert any("t_upp_Daily" in r.getMessage() for r in caplog.records)


def test_misaligned_schedules_and_unknown_steps_warn(tmp_path):
    root = write_project(tmp_path / "a", details(execution_delta="timedelta(minutes=30)"))
    (warning,) = wait_warnings(load_project(root, env="LOCAL"), False)
    assert "no partition of t_up_Daily" in str(warning) and "2024-01-02 05:30 UTC" in str(warning)
    root = write_project(tmp_path / "b", details(external_task_id="python_script_z"))
    (warning,) = wait_warnings(load_project(root, env="LOCAL"), False)
    assert "has no step 'python_script_z'" in str(warning)


def test_the_example_project_validates_without_warnings():
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["--project-dir", str(REPO), "validate"], out=out, err=err) == 0
    assert out.getvalue() == ""


def test_the_load_logs_at_most_ten_wait_warnings(tmp_path, caplog):
    """Every Dagster process loads the code location: a project full of unsatisfiable waits
    must not flood each one's log."""
    waits = "".join(
        f"      - name: wait_{n}\n        type: ExternalTaskSensor\n"
        f"        external_dag_details: {{external_dag_id: nowhere_{n}, external_task_id: t}}\n"
        for n in range(12)
    )
    config = (
        "dags:\n  sagemaker:\n    domain: t\n    sub_domain: many\n    action: Daily\n"
        '    default_args: {owner: "T", start_date: "2024-1-1"}\n    schedule_interval: "0 6 * * *"\n'
        f"    tasks:\n{waits}"
    )
    root = write_project(tmp_path, extra={"many.yml": config})
    with caplog.at_level(logging.WARNING, logger="ml_pipelines.waits"):
        location(root)
    lines = [r.getMessage() for r in caplog.records if r.name == "ml_pipelines.waits"]
    assert len(lines) == 11 and lines[-1].startswith("and 2 more external waits")


def test_a_pipeline_that_fails_to_build_leaves_the_waits_of_the_others(tmp_path, monkeypatch):
    """One config never breaks the location: a waiting pipeline whose build fails (a broken-config
    asset instead of its steps) gets no check and no place in the sensor; the others keep theirs."""
    from dagster import AssetKey, Definitions

    import ml_pipelines.factory as factory
    from tests.factory.conftest import build_defs

    build = factory._build_pipeline  # noqa: SLF001

    def failing(pipeline, *args, **kwargs):
        if pipeline.pipeline_id == "t_down_Daily":
            raise RuntimeError("a bug while building")
        return build(pipeline, *args, **kwargs)

    root = write_project(tmp_path / "p", extra={"second.yml": _second_waiting_pipeline()})
    monkeypatch.setattr(factory, "_build_pipeline", failing)
    defs = build_defs(root, tmp_path / "home")
    Definitions.validate_loadable(defs)
    checks = {key.asset_key for c in defs.asset_checks for key in c.check_keys}
    assert checks == {AssetKey(["t_second_Daily", "wait_up"])}
    assert defs.get_sensor_def("ml_pipelines_waits")


def _second_waiting_pipeline() -> str:
    return (
        "dags:\n  sagemaker:\n    domain: t\n    sub_domain: second\n    action: Daily\n"
        '    default_args: {owner: "T", start_date: "2024-1-1"}\n    schedule_interval: "0 6 * * *"\n'
        "    tasks:\n      - name: wait_up\n        type: ExternalTaskSensor\n"
        f"        external_dag_details: {{external_dag_id: {UP}, external_task_id: python_script_a}}\n"
        "      - {name: python_script_b, script_loc: common, script_name: echo, upstream_task_name: wait_up}\n"
    )
