"""Alert sensor benchmark: what one tick costs with the configs of N pipelines.

Generates N six-step pipelines (bench/generate.py, plus a Slack channel and e-mail settings),
loads them, builds the alert index the sensor keeps (load-time cost), and times
`evaluate_alerts` (the sensor's whole evaluation) on an on-disk SQLite instance, LOCAL's
storage, holding `--history` runs already alerted:

- idle: nothing new since the last tick;
- in progress: `--running` runs started, each with one step retry;
- finished: `--finished` runs ended since the last tick (half succeeded after a retry,
  half failed after one), i.e. 2 alerts each.

Runs and their events are written to the instance directly (the same event types and
data a run writes), so the measure is the sensor's queries and processing. The notifier
counts alerts without sending (the cost of Slack/SMTP is the network's). Medians of
--repeat. Usage: python bench/bench_alerts.py [--pipelines 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from dagster import AssetKey, DagsterEvent, DagsterEventType, DagsterInstance, DagsterRun  # noqa: E402
from dagster._core.events import JobFailureData  # noqa: E402
from dagster._core.execution.plan.objects import StepFailureData, StepRetryData, StepSuccessData  # noqa: E402
from dagster._core.storage.tags import PARTITION_NAME_TAG  # noqa: E402
from dagster._utils.error import SerializableErrorInfo  # noqa: E402
from generate import generate  # noqa: E402

from ml_pipelines.alerts.notifier import Delivery, Notifier  # noqa: E402
from ml_pipelines.alerts.sensors import AlertIndex, evaluate_alerts  # noqa: E402
from ml_pipelines.config.loader import load_project  # noqa: E402
from ml_pipelines.factory.assets import PIPELINE_TAG, step_key  # noqa: E402

JOB = "__ASSET_JOB"
ALERT_KEYS = """\
      email_nonprod: "bench-dev@example.com"
      email_on_failure: True
      email_on_retry: True
    slack_channel:
      NON-PROD: "#bench-alerts"
      PROD: "bench-alerts"
"""
ERROR = SerializableErrorInfo("dagster._core.definitions.events.Failure: step x failed: boom\n", [], "Failure")


class CountingNotifier(Notifier):
    summary = "counting"

    def __init__(self):
        self.count = 0

    def notify(self, alert, route, log):
        self.count += 1
        return [Delivery("count", "-", True)]


def _event(instance: DagsterInstance, run_id: str, kind: DagsterEventType, step: str | None = None, data=None):
    instance.report_dagster_event(
        DagsterEvent(kind.value, job_name=JOB, step_key=step, event_specific_data=data), run_id, logging.INFO
    )


class Runs:
    """Writes runs of the generated pipelines to the instance, as a run worker would."""

    def __init__(self, instance: DagsterInstance, index: AlertIndex):
        self.instance, self.index = instance, index
        self.pids = sorted(index.pipelines)
        self.n = 0

    def start(self) -> tuple[str, str, list[str]]:
        pid = self.pids[self.n % len(self.pids)]
        self.n += 1
        steps = list(self.index.pipelines[pid].steps)
        run = self.instance.add_run(
            DagsterRun(
                job_name=JOB,
                tags={PIPELINE_TAG: pid, PARTITION_NAME_TAG: "2024-05-01"},
                asset_selection=frozenset(AssetKey([pid, s]) for s in steps),
            )
        )
        _event(self.instance, run.run_id, DagsterEventType.RUN_START)
        ops = [step_key(pid, s).to_python_identifier() for s in steps]
        _event(self.instance, run.run_id, DagsterEventType.STEP_SUCCESS, ops[0], StepSuccessData(1.0))
        _event(self.instance, run.run_id, DagsterEventType.STEP_UP_FOR_RETRY, ops[1], StepRetryData(ERROR, 300))
        return run.run_id, pid, ops

    def finish(self, run_id: str, ops: list[str], ok: bool) -> None:
        if ok:
            for op in ops[1:]:
                _event(self.instance, run_id, DagsterEventType.STEP_SUCCESS, op, StepSuccessData(1.0))
            _event(self.instance, run_id, DagsterEventType.RUN_SUCCESS)
        else:
            _event(self.instance, run_id, DagsterEventType.STEP_FAILURE, ops[1], StepFailureData(ERROR, None))
            _event(self.instance, run_id, DagsterEventType.RUN_FAILURE, data=JobFailureData(None))


def _tick(instance, cursor, index, notifier) -> tuple[str, float]:
    start = time.perf_counter()
    cursor, _ = evaluate_alerts(instance, cursor, index, notifier, logging.getLogger("bench.alerts"))
    return cursor, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipelines", type=int, default=1000)
    parser.add_argument("--history", type=int, default=1000, help="runs already alerted before the measured ticks")
    parser.add_argument("--running", type=int, default=8)
    parser.add_argument("--finished", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    opts = parser.parse_args()
    logging.getLogger("bench.alerts").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        root = generate(Path(tmp) / "project", opts.pipelines)
        for config in (root / "model_configs").glob("bench_*.yml"):
            text = config.read_text()
            config.write_text(text.replace("      retry_delay: 5\n", "      retry_delay: 5\n" + ALERT_KEYS))
        project = load_project(root, env="LOCAL")
        assert len(project.pipelines) == opts.pipelines, project.errors[:3]
        start = time.perf_counter()
        index = AlertIndex.from_project(project, "LOCAL", "http://127.0.0.1:3000")
        index_s = time.perf_counter() - start
        print(f"{opts.pipelines} pipelines: alert index built in {index_s * 1000:.1f} ms ({len(index.ops)} steps)")

        (Path(tmp) / "home").mkdir()
        (Path(tmp) / "home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        with DagsterInstance.from_config(str(Path(tmp) / "home")) as instance:
            runs = Runs(instance, index)
            notifier = CountingNotifier()
            cursor, first = _tick(instance, None, index, notifier)
            for i in range(opts.history):
                run_id, _, ops = runs.start()
                runs.finish(run_id, ops, ok=i % 2 == 0)
            drained, ticks = time.perf_counter(), 0
            while True:  # alert the history (STATUS_FETCH_LIMIT events of each type per tick)
                before = notifier.count
                cursor, _ = _tick(instance, cursor, index, notifier)
                ticks += 1
                if notifier.count == before:
                    break
            backlog = (notifier.count, ticks, time.perf_counter() - drained)
            idle, running, finished = [], [], []
            for _ in range(opts.repeat):
                cursor, s = _tick(instance, cursor, index, notifier)
                idle.append(s)
                started = [runs.start() for _ in range(opts.running)]
                before = notifier.count
                cursor, s = _tick(instance, cursor, index, notifier)
                running.append(s)
                assert notifier.count - before == opts.running, "one retry alert per run in progress"
                for i, (run_id, _, ops) in enumerate(started):
                    runs.finish(run_id, ops, ok=i % 2 == 0)
                batch = [runs.start() for _ in range(opts.finished)]
                for i, (run_id, _, ops) in enumerate(batch):
                    runs.finish(run_id, ops, ok=i % 2 == 0)
                before = notifier.count
                cursor, s = _tick(instance, cursor, index, notifier)
                finished.append(s)
                # the in-progress runs' end (their retries already sent) + 2 alerts per new finished run
                assert notifier.count - before == opts.running + 2 * opts.finished, notifier.count - before
            med = statistics.median
            print(f"first tick (cursor set up): {first * 1000:.1f} ms")
            print(f"history: {opts.history} runs, {backlog[0]} alerts sent in {backlog[1]} ticks, {backlog[2]:.2f} s")
            print(f"idle tick:                                  {med(idle) * 1000:7.1f} ms")
            print(f"tick with {opts.running} runs in progress (1 retry each): {med(running) * 1000:7.1f} ms")
            print(
                f"tick with {opts.finished + opts.running} runs finished ({2 * opts.finished + opts.running} alerts): "
                f"{med(finished) * 1000:7.1f} ms"
            )


if __name__ == "__main__":
    main()
