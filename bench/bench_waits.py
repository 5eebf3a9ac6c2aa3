"""Waits benchmark: what the waits sensor costs with N pipelines that each wait on another, and
how long a satisfied wait takes to launch the steps after it.

1. One pass (`evaluate_waits`, the sensor's whole evaluation) with the configs of N six-step
   pipelines (bench/generate.py: each waits for the previous one's last step; execution_delta
   set so that the awaited partition exists), on an on-disk SQLite instance (LOCAL's storage)
   holding `--days` days of materializations of every awaited step. Every pipeline's tick is
   made to fall in the pass (the worst case: all N open at once):
   - open: the N waits open and are checked a first time (nothing there yet);
   - poke: all N due again, still not satisfied;
   - idle: a tick with nothing due;
   - satisfied: all N satisfied at once (N runless materializations, N checks, up to 200 run
     requests: the steps after each wait, once its container image, run at the tick, is there).
   Medians of --repeat. Also the load-time cost of the sensor's index and of the wait checks.

2. `--delay N`: a real `dagster-daemon`, code server and instance (temp, SQLite), N pipelines
   waiting on N steps of another (every-minute crons, poke_interval `--poke`, the sensor's
   default interval): the awaited steps are materialized at spread times after the tick and
   the delay from each materialization to the creation of the run the sensor launches is
   measured (goal: <= poke_interval + 30 s).

3. `--automation`: for comparison, one evaluation of declarative automation's conditions on
   the same location (`AutomationCondition.eager()` on each step after a wait), three times.

Usage: python bench/bench_waits.py [--pipelines 1000] [--repeat 5] [--days 7] [--delay 6 --poke 10] [--automation]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))
from dagster import AssetKey, AssetMaterialization, DagsterInstance  # noqa: E402
from dagster._core.instance.ref import InstanceRef  # noqa: E402
from generate import CRONS, generate  # noqa: E402

from ml_pipelines.config.loader import load_project  # noqa: E402
from ml_pipelines.waits.index import WaitIndex, awaited_partition  # noqa: E402
from ml_pipelines.waits.sensor import WaitCursor, evaluate_waits, wait_checks  # noqa: E402

logging.getLogger("ml_pipelines.waits").setLevel(logging.ERROR)


def _minutes(cron: str) -> int:
    minute, hour = cron.split()[:2]
    return int(hour) * 60 + int(minute)


def aligned_project(root: Path, count: int) -> Path:
    """bench/generate.py's project, each wait's execution_delta set to the gap between its
    pipeline's cron and the awaited one's (so the awaited partition exists), start dates equal."""
    generate(root, count)
    for i in range(count):
        path = root / "model_configs" / f"bench_{i:04d}.yml"
        own, theirs = _minutes(CRONS[i % len(CRONS)]), _minutes(CRONS[(i - 1) % count % len(CRONS)])
        gap = (own - theirs) % (24 * 60)
        text = path.read_text().replace(
            "execution_delta: timedelta(hours=0)",
            f"execution_delta: timedelta(minutes={gap})\n          timeout: 2 * 86400",
        )
        text = re.sub(r'start_date: "2024-1-\d+"', 'start_date: "2024-1-1"', text)
        path.write_text(text)
    return root


def _median(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def bench_pass(count: int, repeat: int, days: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = aligned_project(Path(tmp) / "project", count)
        project = load_project(root, env="LOCAL")
        assert len(project.pipelines) == count, project.errors[:3]
        built, index = _median(lambda: WaitIndex.from_project(project, "LOCAL", False), 3)
        checks_s, _ = _median(lambda: wait_checks(index), 3)
        print(f"{count} pipelines, {sum(len(p.waits) for p in index.pipelines.values())} waits")
        print(f"load time: sensor index {built * 1000:.0f} ms, wait checks {checks_s * 1000:.0f} ms")

        (Path(tmp) / "dagster_home").mkdir()
        instance = DagsterInstance.local_temp(str(Path(tmp) / "dagster_home"))
        now = datetime(2024, 3, 1, 23, 40, tzinfo=timezone.utc)
        # which partition each wait awaits at `now`: from one opening pass
        probe = evaluate_waits(instance, WaitCursor(at=now.timestamp() - 2 * 86400, runs_at=now.timestamp()).to_json(),
                               index, now=now.timestamp())  # fmt: skip
        opened = WaitCursor.from_json(probe.cursor)
        awaited = []
        for entry in opened.open.values():
            pipeline = index.pipelines[entry.pipeline_id]
            for wait in pipeline.waits.values():
                partition, _ = awaited_partition(wait, pipeline.partitions_def, entry.partition)
                awaited.append((wait.awaited[0], partition))
        # history: `days` days of materializations of each awaited step, not the awaited day itself
        start = time.perf_counter()
        for key, partition in awaited:
            day = datetime.strptime(partition, "%Y-%m-%d")
            for back in range(1, days + 1):
                instance.report_runless_asset_event(
                    AssetMaterialization(key, partition=(day - timedelta(days=back)).strftime("%Y-%m-%d"))
                )
        print(f"history: {len(awaited) * days} materializations written in {time.perf_counter() - start:.0f} s")

        at = now.timestamp()
        cursor0 = WaitCursor(at=at - 2 * 86400, runs_at=at).to_json()
        open_s, opened_result = _median(lambda: evaluate_waits(instance, cursor0, index, now=at), repeat)
        cursor1 = opened_result.cursor
        poke_s, poked = _median(lambda: evaluate_waits(instance, cursor1, index, now=at + 301), repeat)
        idle_s, _ = _median(lambda: evaluate_waits(instance, cursor1, index, now=at + 1), repeat)
        # satisfied: the awaited partitions and the images (run at the tick) materialized
        for key, partition in awaited:
            instance.report_runless_asset_event(AssetMaterialization(key, partition=partition))
        for pipeline in index.pipelines.values():
            instance.report_runless_asset_event(AssetMaterialization(pipeline.key("ecr_container_creation")))
        sat_s, satisfied = _median(lambda: evaluate_waits(instance, cursor1, index, now=at + 301), repeat)
        print(f"one pass, medians of {repeat} (goal <= 2 s):")
        print(f"  open:      {open_s:.2f} s  ({opened_result.summary.split('.')[0]})")
        print(f"  poke:      {poke_s:.2f} s  ({poked.summary.split('.')[0]})")
        print(f"  idle:      {idle_s * 1000:.0f} ms")
        print(f"  satisfied: {sat_s:.2f} s  ({satisfied.summary.split('.')[0]})")
        print(f"cursor with {count} waits open: {len(cursor1) / 1024:.0f} KiB")
        # what the daemon then does with a pass's asset events: one runless event each
        for name, result in (("open", opened_result), ("satisfied", satisfied)):
            start = time.perf_counter()
            for event in result.asset_events:
                instance.report_runless_asset_event(event)
            spent = time.perf_counter() - start
            print(f"daemon records the {name} pass's {len(result.asset_events)} asset events: {spent:.1f} s (SQLite)")
        instance.dispose()


# --- 2. the delay, through a real daemon -------------------------------------------------------

PIPELINE = """\
dags:
  sagemaker:
    domain: d
    sub_domain: {sub}
    action: Minutely
    default_args: {{owner: "Bench", start_date: "{start}", retries: 0}}
    schedule_interval: "* * * * *"
    tasks:
{tasks}
"""


def bench_delay(samples: int, poke: int) -> None:
    from tests.alerts.conftest import free_port
    from tests.alerts.test_alerts_daemon import Stack, _until

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        project = tmp / "p"
        (project / "model_configs").mkdir(parents=True)
        (project / "Py_Models").mkdir()
        (project / "Py_Models" / "echo.py").write_text("print('echo')\n")
        start = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%d")
        up_tasks = "\n".join(
            f"      - {{name: python_script_{n}, script_loc: common, script_name: echo}}" for n in range(samples)
        )
        (project / "model_configs" / "up.yml").write_text(PIPELINE.format(sub="up", start=start, tasks=up_tasks))
        for n in range(samples):
            tasks = (
                f"      - name: wait_up\n        type: ExternalTaskSensor\n        external_dag_details:\n"
                f"          external_dag_id: d_up_Minutely\n          external_task_id: python_script_{n}\n"
                f"          poke_interval: {poke}\n          timeout: 600\n"
                "      - {name: python_script_after, script_loc: common, script_name: echo, upstream_task_name: wait_up}"
            )
            (project / "model_configs" / f"w{n}.yml").write_text(PIPELINE.format(sub=f"w{n}", start=start, tasks=tasks))
        home = tmp / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
        instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))  # before the daemon starts
        port = free_port()
        workspace = tmp / "workspace.yaml"
        workspace.write_text(
            json.dumps(
                {"load_from": [{"grpc_server": {"host": "127.0.0.1", "port": port, "location_name": "ml_pipelines"}}]}
            )
        )  # noqa: E501
        env = {**os.environ, "DAGSTER_HOME": str(home), "ML_PIPELINES_PROJECT_DIR": str(project),
               "ML_PIPELINES_HOME": str(tmp / "state"), "PYTHONPATH": str(REPO)}  # fmt: skip
        env.pop("ML_PIPELINES_WAIT_INTERVAL_SECONDS", None)
        (tmp / "logs").mkdir()
        stack = Stack(tmp / "logs", env, REPO)
        bin_dir = Path(sys.executable).parent
        try:
            stack.start("code-server", [str(bin_dir / "dagster"), "code-server", "start", "-m", "ml_pipelines.definitions",
                                        "-h", "127.0.0.1", "-p", str(port), "--location-name", "ml_pipelines"])  # fmt: skip
            time.sleep(8)
            subprocess.run([str(bin_dir / "dagster"), "schedule", "start", "--start-all", "-w", str(workspace)],
                           env=env, check=True, capture_output=True)  # fmt: skip
            stack.start("daemon", [str(bin_dir / "dagster-daemon"), "run", "-w", str(workspace)])
            # the next minute's tick opens the waits
            tick = (datetime.now(timezone.utc) + timedelta(minutes=1)).replace(second=0, microsecond=0)
            if (tick - datetime.now(timezone.utc)).total_seconds() < 15:  # the daemon's sensor must be up first
                tick += timedelta(minutes=1)
            partition = (tick - timedelta(minutes=1)).strftime("%Y-%m-%d-%H:%M")
            print(f"delay: {samples} waits, poke_interval {poke} s, tick {tick:%H:%M:%S}")
            time.sleep(max(0.0, (tick - datetime.now(timezone.utc)).total_seconds()) + 2)
            materialized: dict[int, float] = {}
            for n in range(samples):  # spread over a poke interval and a bit
                time.sleep((poke + 7) / samples)
                instance.report_runless_asset_event(
                    AssetMaterialization(AssetKey(["d_up_Minutely", f"python_script_{n}"]), partition=partition)
                )
                materialized[n] = time.time()

            def launched():
                runs = {}
                for record in instance.get_run_records():
                    pid = record.dagster_run.tags.get("ml_pipelines/pipeline", "")
                    if record.dagster_run.tags.get("ml_pipelines/launched_after_waits") and pid.startswith("d_w"):
                        runs[int(pid[3:].split("_")[0])] = record.create_timestamp.timestamp()
                return runs if len(runs) == samples else None

            runs = _until("the runs after the waits", launched, stack, 300)
            delays = sorted(runs[n] - materialized[n] for n in range(samples))
            print(f"  materialization -> run created: median {statistics.median(delays):.1f} s, max {max(delays):.1f} s "
                  f"(goal <= {poke + 30} s); all: {', '.join(f'{d:.1f}' for d in delays)}")  # fmt: skip
        finally:
            stack.close()
            instance.dispose()


def bench_automation(count: int, repeat: int) -> None:
    """For comparison: declarative automation instead of the sensor's launches. The same
    location with `AutomationCondition.eager()` on each step after the wait; one evaluation
    of every condition is what the automation sensor does each tick."""
    from dagster import AutomationCondition, evaluate_automation_conditions

    from tests.factory.conftest import build_defs

    after = {"sagemaker_notebook_job_processing_script", "glue_job_processing_script", "python_script_check",
             "write_to_snowflake"}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = aligned_project(tmp / "project", count)
        first = root / "model_configs" / "bench_0000.yml"  # generate.py's waits form a ring: DA refuses cycles
        first.write_text(
            first.read_text().replace(
                f'external_dag_id: "bench_p{count - 1:04d}_Daily"', 'external_dag_id: "elsewhere"'
            )
        )
        defs = build_defs(root, tmp / "home")

        def eager(spec):
            if spec.key.path[-1] in after:
                return spec.replace_attributes(automation_condition=AutomationCondition.eager())
            return spec

        defs = defs.map_asset_specs(func=eager)
        (tmp / "dagster_home").mkdir()
        instance = DagsterInstance.local_temp(str(tmp / "dagster_home"))
        times, cursor = [], None
        for _ in range(repeat):
            start = time.perf_counter()
            cursor = evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor).cursor
            times.append(time.perf_counter() - start)
        print(
            f"declarative automation, {count} pipelines: one evaluation of all conditions "
            f"{', '.join(f'{t:.1f}' for t in times)} s"
        )
        instance.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipelines", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--delay", type=int, default=0, help="samples of the daemon delay measurement (0: skip)")
    parser.add_argument("--poke", type=int, default=10)
    parser.add_argument("--automation", action="store_true", help="also time declarative automation (slow)")
    args = parser.parse_args()
    bench_pass(args.pipelines, args.repeat, args.days)
    if args.automation:
        bench_automation(args.pipelines, 3)
    if args.delay:
        bench_delay(args.delay, args.poke)


if __name__ == "__main__":
    main()
