"""Real runs of a small project on a temp instance, then ticks of the alert sensor (through
Dagster's sensor test context): the fake Slack and the SMTP server receive the right
messages for a successful, a retried and a failed run, each once."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from dagster import AssetKey, DagsterEventType, DagsterRun, asset, build_sensor_context, materialize

from ml_pipelines.alerts.notifier import Notifier, alert_settings_from_env, notifier_for
from ml_pipelines.alerts.sensors import ALERT_SENSOR_NAME, AlertIndex, alert_sensor, evaluate_alerts
from ml_pipelines.config.loader import load_project
from ml_pipelines.factory.assets import PIPELINE_TAG
from tests.alerts.conftest import UI_URL, alert_environ, free_port, other_instance

ALERTS, FAILMAIL, QUIET = "t_alerts_Daily", "t_failmail_Daily", "t_quiet_Daily"


def _run(defs, instance, pipeline_id: str, step: str, partition: str):
    assets_def = defs.get_assets_def(AssetKey([pipeline_id, step]))
    return materialize(
        [assets_def], partition_key=partition, instance=instance, resources=defs.resources, raise_on_error=False
    )


class Sensor:
    """The alert sensor of the project in `env`, ticked as the daemon would (cursor kept)."""

    def __init__(self, project_dir, instance, notifier: Notifier, env: str = "LOCAL"):
        self.index = AlertIndex.from_project(load_project(project_dir, env=env), env, UI_URL)
        self.sensor = alert_sensor(self.index)
        self.instance, self.notifier = instance, notifier
        self.cursor: str | None = None
        self.tick()  # the first tick starts from now

    def tick(self) -> str:
        context = build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources={"notifier": self.notifier}
        )
        data = self.sensor.evaluate_tick(context)
        assert not data.run_requests
        self.cursor = data.cursor
        return data.skip_message


@pytest.fixture
def channels(fake_slack, smtp_server):
    return notifier_for(alert_settings_from_env(alert_environ(fake_slack, smtp_server)))


def test_a_successful_run_posts_to_slack_once(alerts_project, instance, fake_slack, smtp_server, channels, partition):
    project_dir, defs = alerts_project
    sensor = Sensor(project_dir, instance, channels)
    result = _run(defs, instance, ALERTS, "python_script_echo", partition)
    assert result.success
    summary = sensor.tick()
    (message,) = fake_slack.messages
    assert message["channel"] == "#ds-alerts-dev"  # NON-PROD outside PROD
    text = message["text"]
    assert ALERTS in text and "succeeded" in text and partition in text and "python_script_echo" in text
    assert f"{UI_URL}/runs/{result.run_id}" in text
    assert fake_slack.requests[0]["auth"] == "Bearer xoxb-test-token"
    assert smtp_server.messages == []  # no e-mail on success
    assert summary.startswith("1 alert(s): 1 sent")
    # exactly once
    assert sensor.tick().startswith("no new alerts")
    assert len(fake_slack.messages) == 1


def test_a_retried_run_alerts_the_retry_then_the_success(
    alerts_project, instance, fake_slack, smtp_server, channels, partition
):
    project_dir, defs = alerts_project
    sensor = Sensor(project_dir, instance, channels)
    result = _run(defs, instance, ALERTS, "python_script_flaky", partition)
    assert result.success
    sensor.tick()
    retry, success = fake_slack.messages
    assert "step retried" in retry["text"] and "python_script_flaky" in retry["text"]
    assert "attempt 1 of 2 failed" in retry["text"] and "first attempt fails on purpose" in retry["text"]
    assert partition in retry["text"] and f"/runs/{result.run_id}" in retry["text"]
    assert "succeeded" in success["text"]
    (mail,) = smtp_server.messages  # email_on_retry: True
    assert mail["To"] == "ds-dev@example.com, ds-dev2@example.com"
    assert smtp_server.envelopes[0] == ("ml-pipelines@example.com", ["ds-dev@example.com", "ds-dev2@example.com"])
    assert mail["Subject"] == (
        f"[ml-pipelines LOCAL] RETRY: pipeline {ALERTS}, partition {partition}, step python_script_flaky "
        "(attempt 1 of 2 failed, next attempt in 0 s)"
    )
    body = mail.get_content()
    assert "first attempt fails on purpose" in body and f"{UI_URL}/runs/{result.run_id}" in body
    sensor.tick()
    assert len(fake_slack.messages) == 2 and len(smtp_server.messages) == 1


def test_a_failed_run_alerts_each_retry_and_the_failure(
    alerts_project, instance, fake_slack, smtp_server, channels, partition
):
    project_dir, defs = alerts_project
    sensor = Sensor(project_dir, instance, channels)
    runs = {pid: _run(defs, instance, pid, "python_script_always_fail", partition) for pid in (ALERTS, FAILMAIL, QUIET)}
    assert not any(r.success for r in runs.values())
    summary = sensor.tick()
    # Slack: only the pipeline with a channel, its retry then its failure
    retry, failure = fake_slack.messages
    assert "step retried" in retry["text"]
    text = failure["text"]
    assert ":x:" in text and f"*{ALERTS}* failed" in text and "python_script_always_fail" in text
    assert "this step always fails" in text and "second line of the error" in text
    assert f"{UI_URL}/runs/{runs[ALERTS].run_id}" in text
    # e-mail: ALERTS gets the retry and the failure; FAILMAIL the failure only; QUIET nothing
    assert [m["Subject"].split("]")[1].split(":")[0].strip() for m in smtp_server.to("ds-dev@example.com")] == [
        "RETRY",
        "FAILED",
    ]
    (mail,) = smtp_server.to("fail-dev@example.com")
    assert mail["Subject"] == (
        f"[ml-pipelines LOCAL] FAILED: pipeline {FAILMAIL}, partition {partition}, step python_script_always_fail"
    )
    body = mail.get_content()
    assert "Error of step python_script_always_fail (first lines):" in body
    assert "this step always fails" in body and f"/runs/{runs[FAILMAIL].run_id}" in body
    assert smtp_server.to("quiet@example.com") == []
    assert len(smtp_server.messages) == 3
    # sent: ALERTS' retry and failure, FAILMAIL's failure; no recipient: FAILMAIL's retry, QUIET's both
    assert summary.startswith("6 alert(s): 3 sent") and "3 with no recipient in LOCAL" in summary
    sensor.tick()
    assert len(fake_slack.messages) == 2 and len(smtp_server.messages) == 3


def test_prod_alerts_go_to_the_prod_channel_and_email_prod(
    alerts_project, instance, fake_slack, smtp_server, channels, partition
):
    project_dir, defs = alerts_project
    sensor = Sensor(project_dir, instance, channels, env="PROD")
    _run(defs, instance, ALERTS, "python_script_always_fail", partition)
    sensor.tick()
    assert {m["channel"] for m in fake_slack.messages} == {"ds-alerts"}
    assert "(PROD)" in fake_slack.messages[0]["text"]
    assert {rcpt for _, rcpts in smtp_server.envelopes for rcpt in rcpts} == {"ds-oncall@example.com"}
    assert all(m["Subject"].startswith("[ml-pipelines PROD]") for m in smtp_server.messages)


def test_runs_before_the_first_tick_and_runs_of_other_assets_are_not_alerted(
    alerts_project, instance, fake_slack, smtp_server, channels, partition
):
    project_dir, defs = alerts_project
    _run(defs, instance, ALERTS, "python_script_echo", partition)
    sensor = Sensor(project_dir, instance, channels)

    @asset
    def not_a_pipeline_step():
        raise ValueError("another code location's asset")

    materialize([not_a_pipeline_step], instance=instance, raise_on_error=False)
    assert sensor.tick().startswith("no new alerts")
    assert fake_slack.requests == [] and smtp_server.messages == []


def test_a_retry_is_alerted_while_its_run_is_still_going(
    alerts_project, instance, fake_slack, smtp_server, channels, partition
):
    """A retry is sent at the tick after it happens, not when the run ends; the run's end
    then sends the success alone."""
    project_dir, defs = alerts_project
    sensor = Sensor(project_dir, other_instance(instance), channels)
    results = []
    thread = threading.Thread(
        target=lambda: results.append(_run(defs, instance, ALERTS, "python_script_wait", partition))
    )
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not _has_retry(sensor.instance) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _has_retry(sensor.instance)
        sensor.tick()
        (retry,) = fake_slack.messages
        assert "step retried" in retry["text"] and "python_script_wait" in retry["text"]
        assert "first attempt fails, the second waits" in retry["text"]
        assert sensor.tick().startswith("no new alerts")  # still running, retry already sent
    finally:
        marker = project_dir.parent / f"wait-alerts-{partition}.marker.go"
        marker.touch()
        thread.join(60)
    assert results[0].success
    sensor.tick()
    assert [m["text"].split("*")[2].split("(")[0].strip() for m in fake_slack.messages] == ["step retried", "succeeded"]
    assert len(smtp_server.messages) == 1  # the retry e-mail, once


def _has_retry(instance) -> bool:
    from dagster import EventRecordsFilter

    try:
        return bool(instance.get_event_records(EventRecordsFilter(DagsterEventType.STEP_UP_FOR_RETRY), limit=1))
    except Exception:  # noqa: BLE001 - SQLite answers this per run only: look at the runs
        from dagster import DagsterRunStatus, RunsFilter

        for record in instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED])):
            if instance.get_records_for_run(
                record.dagster_run.run_id, of_type=DagsterEventType.STEP_UP_FOR_RETRY
            ).records:
                return True
        return False


def test_a_run_that_fails_outside_its_steps_names_the_run_error(
    alerts_project, instance, fake_slack, smtp_server, channels, partition
):
    project_dir, _ = alerts_project
    sensor = Sensor(project_dir, instance, channels)
    run = instance.add_run(
        DagsterRun(
            job_name="__ASSET_JOB", run_id="a1b2c3d4-run", tags={PIPELINE_TAG: ALERTS, "dagster/partition": partition}
        )
    )
    instance.report_run_failed(run, "the run worker could not start: out of memory")
    sensor.tick()
    (message,) = fake_slack.messages
    assert f"*{ALERTS}* failed" in message["text"] and "the run worker could not start" in message["text"]
    assert f"{UI_URL}/runs/a1b2c3d4-run" in message["text"]
    (mail,) = smtp_server.messages
    assert "out of memory" in mail.get_content()


def test_undeliverable_alerts_are_warnings_and_the_tick_goes_on(alerts_project, instance, partition, caplog):
    """Slack and SMTP down: each delivery is a warning, the tick completes and its cursor
    moves on (the alerts are not sent again)."""
    project_dir, defs = alerts_project
    dead = f"http://127.0.0.1:{free_port()}/api/"
    environ = alert_environ(
        ML_PIPELINES_SLACK_TOKEN="xoxb-t",
        ML_PIPELINES_SLACK_API_URL=dead,
        ML_PIPELINES_SMTP_HOST="127.0.0.1",
        ML_PIPELINES_SMTP_PORT=str(free_port()),
        ML_PIPELINES_SMTP_SECURITY="none",
    )
    notifier = notifier_for(alert_settings_from_env(environ))
    index = AlertIndex.from_project(load_project(project_dir, env="LOCAL"), "LOCAL", UI_URL)
    log = logging.getLogger("tests.alerts")
    cursor, _ = evaluate_alerts(instance, None, index, notifier, log)
    _run(defs, instance, ALERTS, "python_script_always_fail", partition)
    with caplog.at_level(logging.INFO, logger="tests.alerts"):
        cursor, summary = evaluate_alerts(instance, cursor, index, notifier, log)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 4  # retry and failure, each to Slack and e-mail
    assert all("alert not delivered" in w for w in warnings)
    assert any("slack to #ds-alerts-dev" in w for w in warnings)
    assert any(
        "email to ds-dev@example.com, ds-dev2@example.com" in w and "ConnectionRefusedError" in w for w in warnings
    )
    assert "4 delivery(ies) failed" in summary
    caplog.clear()
    _, summary = evaluate_alerts(instance, cursor, index, notifier, log)
    assert summary.startswith("no new alerts") and not caplog.records


def test_the_local_default_prints_alerts_in_the_log(alerts_project, instance, partition, caplog):
    project_dir, defs = alerts_project
    notifier = notifier_for(alert_settings_from_env({}))
    index = AlertIndex.from_project(load_project(project_dir, env="LOCAL"), "LOCAL", "http://127.0.0.1:3000")
    log = logging.getLogger("tests.alerts")
    cursor, _ = evaluate_alerts(instance, None, index, notifier, log)
    result = _run(defs, instance, FAILMAIL, "python_script_always_fail", partition)
    with caplog.at_level(logging.INFO, logger="tests.alerts"):
        evaluate_alerts(instance, cursor, index, notifier, log)
    printed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ALERT")]
    (alert,) = printed  # the failure (e-mail on failure, not on retry; no Slack channel)
    assert "instead of e-mail to fail-dev@example.com (ML_PIPELINES_SMTP_HOST is not set)" in alert
    assert f"FAILED: pipeline {FAILMAIL}, partition {partition}, step python_script_always_fail" in alert
    assert "this step always fails" in alert and f"http://127.0.0.1:3000/runs/{result.run_id}" in alert
    # the retry had no recipient: one line says so
    assert any("RETRY" in m and "nothing to send" in m for m in (r.getMessage() for r in caplog.records))


def test_the_code_location_has_one_running_alert_sensor(alerts_project):
    from dagster import DefaultSensorStatus

    _, defs = alerts_project
    repo = defs.get_repository_def()
    sensors = [s for s in repo.sensor_defs if s.name == ALERT_SENSOR_NAME]
    assert len(sensors) == 1  # one for the whole code location (others, e.g. the run limits', do other work)
    assert sensors[0].default_status == DefaultSensorStatus.RUNNING
    assert isinstance(defs.resources["notifier"], Notifier)
