"""Small projects with external waits, and the waits sensor ticked as the daemon ticks it
(through Dagster's sensor test context, at frozen times), with its asset events recorded in
the instance as the daemon records them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, RunRequest, build_sensor_context, instance_for_test
from dagster._core.test_utils import freeze_time

from ml_pipelines.alerts.messages import Alert
from ml_pipelines.alerts.notifier import Delivery, Notifier, Route
from ml_pipelines.waits.sensor import WAIT_SENSOR_NAME
from tests.alerts.conftest import fake_slack  # noqa: F401 - the fake Slack Web API fixture, for the daemon test
from tests.factory.conftest import build_defs

SCRIPTS = {
    "echo.py": "print('echo')\n",
    "fail.py": "import sys\nsys.exit('this step fails on purpose')\n",
}

UPSTREAM = """\
dags:
  sagemaker:
    domain: t
    sub_domain: up
    action: Daily
    default_args: {{owner: "Up Team", start_date: "2024-1-1", retries: 0}}
    schedule_interval: "0 6 * * *"
    tasks:
      - {{name: python_script_a, script_loc: common, script_name: echo}}
      - {{name: python_script_b, script_loc: common, script_name: {b_script}, upstream_task_name: python_script_a}}
"""

DOWNSTREAM = """\
dags:
  sagemaker:
    domain: t
    sub_domain: {sub_domain}
    action: Daily
    default_args:
      owner: "Down Team"
      start_date: "2024-1-1"
      retries: 0
      email_nonprod: "down-dev@example.com"
      email_on_failure: True
    schedule_interval: "{cron}"
    catchup: {catchup}
    slack_channel:
      NON-PROD: "#down-alerts"
    tasks:
      - {{name: python_script_first, script_loc: common, script_name: {first_script}}}
      - name: wait_up
        type: ExternalTaskSensor
        external_dag_details:
{details}
      - {{name: python_script_after, script_loc: common, script_name: echo, upstream_task_name: [wait_up, python_script_first]}}
      - {{name: python_script_last, script_loc: common, script_name: echo, upstream_task_name: python_script_after}}
"""

UP, DOWN = "t_up_Daily", "t_down_Daily"
WAIT_KEY = AssetKey([DOWN, "wait_up"])
FIRST, AFTER, LAST = (AssetKey([DOWN, s]) for s in ("python_script_first", "python_script_after", "python_script_last"))
TICK = datetime(2024, 1, 5, 6, 0, tzinfo=timezone.utc)  # the tick of partition 2024-01-04 (06:00 to 06:00)
PARTITION = "2024-01-04"


def details(**values: object) -> str:
    """`external_dag_details` lines (10 spaces in)."""
    base = {"external_dag_id": UP, "external_task_id": "python_script_a", "poke_interval": 60, "timeout": 600}
    base.update(values)
    return "\n".join(f"          {k}: {v}" for k, v in base.items() if v is not None)


def write_project(
    root: Path,
    wait: str | None = None,
    *,
    b_script: str = "echo",
    first_script: str = "echo",
    cron: str = "0 6 * * *",
    catchup: bool = False,
    extra: dict[str, str] | None = None,
) -> Path:
    (root / "model_configs").mkdir(parents=True)
    (root / "Py_Models").mkdir()
    for name, text in SCRIPTS.items():
        (root / "Py_Models" / name).write_text(text)
    (root / "model_configs" / "up.yml").write_text(UPSTREAM.format(b_script=b_script))
    (root / "model_configs" / "down.yml").write_text(
        DOWNSTREAM.format(
            sub_domain="down", details=wait or details(), cron=cron, catchup=catchup, first_script=first_script
        )
    )
    for name, text in (extra or {}).items():
        (root / "model_configs" / name).write_text(text)
    return root


class RecordingNotifier(Notifier):
    """The notifier resource, recording each alert and its route."""

    def __init__(self):
        self.sent: list[tuple[Alert, Route]] = []

    @property
    def summary(self) -> str:
        return "recording"

    def notify(self, alert: Alert, route: Route, log: logging.Logger) -> list[Delivery]:
        self.sent.append((alert, route))
        return [Delivery("test", route.slack_channel or "", True)]


@dataclass
class Waits:
    """The code location's waits sensor, ticked at given times as the daemon would tick it."""

    defs: object
    instance: DagsterInstance
    notifier: RecordingNotifier = field(default_factory=RecordingNotifier)
    cursor: str | None = None
    last: object = None

    def __post_init__(self):
        self.sensor = self.defs.get_sensor_def(WAIT_SENSOR_NAME)

    def tick(self, when: datetime):
        with freeze_time(when):
            context = build_sensor_context(
                instance=self.instance,
                cursor=self.cursor,
                repository_def=self.defs.get_repository_def(),
                resources={"notifier": self.notifier},
            )
            data = self.sensor.evaluate_tick(context)
        for event in data.asset_events:  # what the daemon does with a SensorResult's asset events
            self.instance.report_runless_asset_event(event)
        self.cursor = data.cursor
        self.last = data
        return data

    def start(self, when: datetime = TICK - timedelta(minutes=5)):
        data = self.tick(when)
        assert data.skip_message.startswith("started")
        return data

    def run(self, request: RunRequest):
        """Execute a run request as the daemon would launch it (in process)."""
        job = self.defs.resolve_implicit_global_asset_job_def()
        return job.execute_in_process(
            asset_selection=list(request.asset_selection),
            partition_key=request.partition_key,
            tags=request.tags,
            instance=self.instance,
            raise_on_error=False,
        )

    def materialize(self, key: AssetKey, partition: str | None, tags: dict | None = None):
        job = self.defs.resolve_implicit_global_asset_job_def()
        return job.execute_in_process(
            asset_selection=[key], partition_key=partition, instance=self.instance, raise_on_error=False, tags=tags
        )


@pytest.fixture
def instance():
    with instance_for_test() as inst:
        yield inst


def location(root: Path, **kwargs):
    return build_defs(root, root / "home", strict=True)
