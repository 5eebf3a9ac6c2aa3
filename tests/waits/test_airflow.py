"""Waits on DAGs of an Airflow still running the old framework, against a local fake of
Airflow's REST API (tests/waits/fake_airflow.py: no real Airflow runs here; its answers are
written after Airflow's documented `/api/v1` and `/api/v2`, not recorded from a server).
Airflow 3 (`/api/v2`, the JWT token flow) and Airflow 2 (`/api/v1`, basic auth), in allowed,
disallowed and missing states."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from dagster import AssetKey

from ml_pipelines.waits.airflow import (
    AirflowError,
    AirflowQuery,
    AirflowSettings,
    AirflowWaits,
    airflow_instance,
    airflow_settings_from_env,
    detect_api_version,
)
from tests.waits.conftest import DOWN, PARTITION, TICK, WAIT_KEY, Waits, details, location, write_project
from tests.waits.fake_airflow import PASSWORD, USER, serve

DAG = "max_conviva_DQ"
TASK = "action_email_events"
LOGICAL = datetime(2024, 1, 4, 6, 0, tzinfo=timezone.utc)  # partition 2024-01-04 of a "0 6 * * *" pipeline


@pytest.fixture(params=["v2", "v1"], ids=["airflow3-api-v2", "airflow2-api-v1"])
def airflow(request):
    with serve(request.param) as fake:
        yield fake


def settings(fake, api: str | None = None) -> AirflowSettings:
    return AirflowSettings(url=fake.url, user=USER, password=PASSWORD, api=api)


def test_states_allowed_disallowed_and_missing(airflow):
    airflow.add_run(DAG, LOGICAL, "running", {TASK: "success", "other": "failed", "mapped": ["success", "running"]})
    airflow.add_run(DAG, LOGICAL - timedelta(days=1), "failed", {TASK: "upstream_failed"})
    airflow.add_run("whole_dag", LOGICAL, "success", {"a": "success"})
    waits = AirflowWaits(settings(airflow))
    q = {
        "task success": AirflowQuery(DAG, TASK, LOGICAL),
        "task failed": AirflowQuery(DAG, "other", LOGICAL),
        "mapped, one running": AirflowQuery(DAG, "mapped", LOGICAL),
        "task upstream_failed": AirflowQuery(DAG, TASK, LOGICAL - timedelta(days=1)),
        "no such task": AirflowQuery(DAG, "nope", LOGICAL),
        "no run that day": AirflowQuery(DAG, TASK, LOGICAL + timedelta(days=1)),
        "whole dag": AirflowQuery("whole_dag", None, LOGICAL),
        "whole dag, running": AirflowQuery(DAG, None, LOGICAL),
        "unknown dag": AirflowQuery("never_heard_of", None, LOGICAL),
    }
    states = waits.states(q.values())
    assert {name: states[query] for name, query in q.items()} == {
        "task success": "success",
        "task failed": "failed",
        "mapped, one running": "running",
        "task upstream_failed": "upstream_failed",
        "no such task": None,
        "no run that day": None,
        "whole dag": "success",
        "whole dag, running": "running",
        "unknown dag": None,
    }
    assert waits.instance.api_version == airflow.version  # asked the server which API it speaks
    calls = airflow.api_calls
    # per distinct logical date one DAG-runs list, then one task-instance list: no call per wait
    assert [c["path"] for c in calls if c["method"] == "POST"] == [
        f"/api/{airflow.version}/dags/~/dagRuns/list",
        f"/api/{airflow.version}/dags/~/dagRuns/list",
        f"/api/{airflow.version}/dags/~/dagRuns/list",
        f"/api/{airflow.version}/dags/~/dagRuns/~/taskInstances/list",
    ]
    date_field = "execution_date" if airflow.version == "v1" else "logical_date"
    first = next(c for c in calls if c["path"].endswith("dagRuns/list"))
    assert first["body"][f"{date_field}_gte"] == first["body"][f"{date_field}_lte"]


def test_many_waits_cost_a_few_requests(airflow):
    dags = [f"dag_{n}" for n in range(250)]
    for dag in dags:
        airflow.add_run(dag, LOGICAL, "success", {TASK: "success"})
    states = AirflowWaits(settings(airflow, api=airflow.version)).states(AirflowQuery(d, TASK, LOGICAL) for d in dags)
    assert set(states.values()) == {"success"}
    posts = [c for c in airflow.api_calls if c["method"] == "POST"]
    assert len(posts) == 3 + 3  # 250 runs in pages of 100, then 3 chunks of 100 run ids


def test_airflow3_token_flow_and_refresh():
    with serve("v2") as fake:
        fake.add_run(DAG, LOGICAL, "success", {TASK: "success"})
        waits = AirflowWaits(settings(fake, api="v2"))
        assert waits.states([AirflowQuery(DAG, TASK, LOGICAL)]) == {AirflowQuery(DAG, TASK, LOGICAL): "success"}
        token_calls = [r for r in fake.requests if r["path"] == "/auth/token"]
        assert len(token_calls) == 1 and token_calls[0]["body"] == {"username": USER, "password": PASSWORD}
        assert all(c["auth"] == "Bearer jwt-1" for c in fake.api_calls)
        fake.expire_tokens()  # the token expired: a 401, a new token, the call again
        assert waits.states([AirflowQuery(DAG, None, LOGICAL)])[AirflowQuery(DAG, None, LOGICAL)] == "success"
        assert fake.tokens_issued == 2 and fake.api_calls[-1]["auth"] == "Bearer jwt-2"


def test_airflow2_basic_auth_and_no_v2():
    with serve("v1") as fake:
        assert detect_api_version(fake.url) == "v1"
        fake.add_run(DAG, LOGICAL, "success", {TASK: "success"})
        AirflowWaits(settings(fake)).states([AirflowQuery(DAG, TASK, LOGICAL)])
        calls = [c for c in fake.api_calls if c["path"].startswith("/api/v1/")]
        assert calls and all(c["auth"].startswith("Basic ") for c in calls)
        assert not [r for r in fake.requests if r["path"] == "/auth/token"]


def test_airlifts_own_calls_work_on_both_versions(airflow):
    """The instance is dagster-airlift's AirflowInstance: its own methods use the same URL and auth."""
    run_id = airflow.add_run(DAG, LOGICAL, "failed", {TASK: "failed"})
    instance = airflow_instance(settings(airflow))
    assert instance.get_api_url() == f"{airflow.url}/api/{airflow.version}"
    assert instance.get_run_state(DAG, run_id) == "failed"
    assert instance.get_task_instance(DAG, TASK, run_id).state == "failed"


def test_bad_credentials_and_a_dead_server_are_errors():
    with serve("v2") as fake:
        with pytest.raises(AirflowError, match="auth/token: HTTP 401"):
            AirflowWaits(AirflowSettings(fake.url, USER, "wrong", "v2")).states([AirflowQuery(DAG, TASK, LOGICAL)])
        url = fake.url
    with pytest.raises(AirflowError, match="ConnectionError"):
        AirflowWaits(AirflowSettings(url, USER, PASSWORD, "v1")).states([AirflowQuery(DAG, TASK, LOGICAL)])


def test_settings_from_env():
    assert airflow_settings_from_env({}) is None
    s = airflow_settings_from_env(
        {
            "ML_PIPELINES_AIRFLOW_URL": "https://airflow.example.com/",
            "ML_PIPELINES_AIRFLOW_USER": "u",
            "ML_PIPELINES_AIRFLOW_PASSWORD": "pw-secret",
            "ML_PIPELINES_AIRFLOW_API": "V2",
        }  # fmt: skip
    )
    assert (s.url, s.user, s.password, s.api) == ("https://airflow.example.com", "u", "pw-secret", "v2")
    assert "pw-secret" not in repr(s)
    with pytest.raises(ValueError, match="ML_PIPELINES_AIRFLOW_URL"):
        airflow_settings_from_env({"ML_PIPELINES_AIRFLOW_URL": "airflow:8080"})
    with pytest.raises(ValueError, match="ML_PIPELINES_AIRFLOW_API"):
        airflow_settings_from_env({"ML_PIPELINES_AIRFLOW_URL": "http://a", "ML_PIPELINES_AIRFLOW_API": "v3"})


# --- through the sensor ------------------------------------------------------------------------


def _airflow_location(tmp_path, monkeypatch, fake, **wait):
    monkeypatch.setenv("ML_PIPELINES_AIRFLOW_URL", fake.url)
    monkeypatch.setenv("ML_PIPELINES_AIRFLOW_USER", USER)
    monkeypatch.setenv("ML_PIPELINES_AIRFLOW_PASSWORD", PASSWORD)
    wait = {"external_dag_id": DAG, "external_task_id": TASK, **wait}
    return location(write_project(tmp_path, details(**wait)))


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_a_wait_on_airflow_launches_after_an_allowed_state(tmp_path, monkeypatch, instance, version):
    with serve(version) as fake:
        # no source: the id is not a pipeline here and an Airflow is configured
        defs = _airflow_location(tmp_path, monkeypatch, fake, allowed_states='"success"')
        waits = Waits(defs, instance)
        waits.start()
        assert waits.materialize(
            AssetKey([DOWN, "python_script_first"]), PARTITION, tags={"ml_pipelines/pipeline": DOWN}
        )
        data = waits.tick(TICK + timedelta(seconds=10))
        assert "no run yet (logical date 2024-01-04T06:00:00Z)" in data.skip_message  # missing
        fake.add_run(DAG, LOGICAL, "running", {TASK: "failed"})  # disallowed
        data = waits.tick(TICK + timedelta(seconds=75))
        assert not data.run_requests and "seen: failed (logical date" in data.skip_message
        fake.runs[(DAG, LOGICAL)]["tasks"][TASK] = "success"  # cleared and rerun: allowed
        (request,) = waits.tick(TICK + timedelta(seconds=140)).run_requests
        assert request.partition_key == PARTITION
        assert instance.get_materialized_partitions(WAIT_KEY) == {PARTITION}


def test_execution_delta_is_the_logical_date_offset(tmp_path, monkeypatch, instance):
    with serve("v2") as fake:
        defs = _airflow_location(tmp_path, monkeypatch, fake, source="airflow", execution_delta="timedelta(hours=6)")
        fake.add_run(DAG, LOGICAL - timedelta(hours=6), "success", {TASK: "success"})
        waits = Waits(defs, instance)
        waits.start()
        waits.tick(TICK + timedelta(seconds=10))
        assert instance.get_materialized_partitions(WAIT_KEY) == {PARTITION}


def test_an_unreachable_airflow_keeps_the_wait_open_then_it_times_out(tmp_path, monkeypatch, instance):
    with serve("v1") as fake:
        defs = _airflow_location(tmp_path, monkeypatch, fake, timeout=120)
        url = fake.url
    waits = Waits(defs, instance)
    waits.start()
    data = waits.tick(TICK + timedelta(seconds=10))
    assert "cannot check:" in data.skip_message and url.split("//")[1] in data.skip_message
    data = waits.tick(TICK + timedelta(seconds=121))
    assert "1 failed (timed out)" in data.skip_message
    ((alert, _),) = waits.notifier.sent
    assert "cannot check" in alert.errors[0].error


def test_an_airflow_wait_without_settings_shows_as_unconfigured(tmp_path, monkeypatch, instance):
    monkeypatch.delenv("ML_PIPELINES_AIRFLOW_URL", raising=False)
    defs = location(write_project(tmp_path, details(external_dag_id=DAG, external_task_id=TASK, source="airflow")))
    spec = defs.resolve_asset_graph().get(WAIT_KEY)
    assert "not configured" in spec.metadata["source"] and "ML_PIPELINES_AIRFLOW_URL" in spec.description
    waits = Waits(defs, instance)
    waits.start()
    data = waits.tick(TICK + timedelta(seconds=10))
    assert "cannot check: Airflow is not configured (ML_PIPELINES_AIRFLOW_URL is not set)" in data.skip_message
