"""LOCAL run-time benchmark: the example pipelines through Dagster against the same tools by hand.

In one run, on a tmp LOCAL home (the envs are built by an untimed warm-up, as are Spark's and
the kernels' first starts):

(a) Dagster: `max_ds_ViewershipFeatures`, then `max_ds_ContentForecastDaily`, for one partition,
    as runs of the implicit asset job with an asset selection (what the UI's "Materialize"
    launches), in process, on the real code location (ml_pipelines.definitions, LOCAL) and an
    on-disk Dagster instance. Timed: the wall time of the two runs.
(b) By hand, the same work with the same tools and the same resolved plans (arguments,
    parameters, rendered SQL), on a storage root of their own:
    - the Python script: `<env python> land_raw_events.py --key value ...` (subprocess);
    - the Glue script: `<env python> daily_title_features.py --JOB_NAME ... --key value ...`
      with the PYSPARK_SUBMIT_ARGS / PYTHONPATH the LOCAL Glue backend sets (spark-submit-like);
    - the two notebooks: the `papermill` CLI on the env's kernel;
    - the SQL: the Snowflake connector against a fakesnow server that is already running
      (started once, untimed; its start time is printed: the Dagster path starts one per step).

Each is repeated --repeat times (interleaved a, b, b, a, a, b ... so both see the same
machine state); each path empties its storage mirror before every repetition. Prints
medians, the overhead ratio (a)/(b), a per-step breakdown (Dagster's wall time per step from
the event log, the backend's own `duration_s`, the same tool by hand), and the image step on
unchanged requirements (`ecr_container_creation` alone, median of its `duration_s`; the image is
an unpartitioned asset, so that run has no partition). No asserts.

The path the UI takes (a queued run, its own run worker) is measured by bench/bench_run_path.py.

Usage: .venv/bin/python bench/bench_local.py [--repeat 3] [--partition 2024-01-05] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this worktree's ml_pipelines, not the one installed in the venv
FEATURES = "max_ds_ViewershipFeatures"
FORECAST = "max_ds_ContentForecastDaily"
STEPS = {
    FEATURES: ["python_script_land_raw_events", "glue_job_processing_script"],
    FORECAST: [
        "ecr_container_creation",
        "sagemaker_notebook_job_processing_script",
        "sagemaker_notebook_job_processing_script_v2",
        "write_to_snowflake",
    ],
}
PAPERMILL = str(Path(sys.executable).with_name("papermill"))
# Dagster's console logger at ERROR: the event log (what the timings read) still gets everything.
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# ------------------------------------------------------------------------------ (a) Dagster


class DagsterPath:
    """The real code location, built from the environment as `dagster dev` does."""

    def __init__(self, home: Path, instance: Any) -> None:
        os.environ.update(
            {
                "ML_PIPELINES_ENV": "LOCAL",
                "ML_PIPELINES_PROJECT_DIR": str(REPO),
                "ML_PIPELINES_HOME": str(home),
            }
        )
        os.environ.pop("ML_PIPELINES_STORAGE_ROOT", None)
        start = time.perf_counter()
        from ml_pipelines.definitions import defs  # builds the code location from the env above

        self.load_s = time.perf_counter() - start
        self.defs = defs
        # the implicit asset job with an asset selection: what the UI's "Materialize", the
        # schedules and `dagster asset materialize` run (in process here, in a run worker there)
        self.job = defs.resolve_implicit_global_asset_job_def()
        self.instance = instance
        self.storage = home / "storage"

    def materialize(self, pipeline: str, partition: str, steps: list[str] | None = None) -> tuple[float, Any]:
        from dagster import AssetKey

        keys = [AssetKey([pipeline, s]) for s in (steps or STEPS[pipeline])]
        # A run takes a partition only if one of its assets is partitioned (the container
        # image is not: on its own it must run without one).
        graph = self.defs.resolve_asset_graph()
        partition_key = partition if any(graph.get(k).is_partitioned for k in keys) else None
        start = time.perf_counter()
        result = self.job.execute_in_process(
            asset_selection=keys,
            partition_key=partition_key,
            instance=self.instance,
            raise_on_error=False,
            run_config=QUIET,
        )
        elapsed = time.perf_counter() - start
        if not result.success:
            errors = [e.step_failure_data.error for e in result.get_step_failure_events()]
            raise SystemExit(f"{pipeline} failed:\n" + "\n".join(e.to_string() for e in errors if e))
        return elapsed, result

    def step_times(self, result: Any) -> dict[str, dict[str, float]]:
        """Per step: Dagster's wall time ("running on" log line -> its materialization) and the
        backend's own duration_s; plus the run's time before the first and after the last step."""
        from dagster import DagsterEventType

        records = sorted(self.instance.all_logs(result.run_id), key=lambda r: r.timestamp)
        out: dict[str, dict[str, float]] = {}
        started: dict[str, float] = {}
        for r in records:
            message = r.user_message or ""
            if ": running on " in message:
                started[message.split(":", 1)[0]] = r.timestamp
            if r.dagster_event and r.dagster_event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
                mat = r.dagster_event.event_specific_data.materialization
                step = mat.asset_key.path[-1]
                duration = mat.metadata.get("duration_s")
                out[step] = {
                    "wall": r.timestamp - started.get(step, r.timestamp),
                    "backend": float(duration.value) if duration is not None else float("nan"),
                }
        stamps = [r.timestamp for r in records]
        first_start = min(started.values()) if started else stamps[0]
        last_mat = max(
            (
                r.timestamp
                for r in records
                if r.dagster_event and r.dagster_event.event_type == DagsterEventType.ASSET_MATERIALIZATION
            ),
            default=stamps[-1],
        )
        out["(run: before first step)"] = {"wall": first_start - stamps[0], "backend": float("nan")}
        out["(run: after last step)"] = {"wall": stamps[-1] - last_mat, "backend": float("nan")}
        return out


# ------------------------------------------------------------------------------ (b) by hand


class HandPath:
    """The same steps' plans, run with the plain tools on a storage root of their own."""

    def __init__(self, home: Path, root: Path, partition: str, stack: ExitStack) -> None:
        from ml_pipelines.config.loader import load_project
        from ml_pipelines.config.variables import load_variables
        from ml_pipelines.local.envs import ensure_python_env
        from ml_pipelines.local.warehouse import fakesnow_server
        from ml_pipelines.plan import plan_step, window_for

        self.storage = root / "storage"
        self.work = root / "work"
        project = load_project(REPO, env="LOCAL")
        variables = load_variables(project.paths.model_configs, "LOCAL")
        self.plans: dict[str, Any] = {}
        for pipeline_id, steps in STEPS.items():
            pipeline = project.pipeline(pipeline_id)
            args = pipeline.config.default_args
            window = window_for(pipeline.config.schedule_interval, args.start_date, date.fromisoformat(partition))
            for step in steps:
                self.plans[step] = plan_step(
                    pipeline,
                    step,
                    "LOCAL",
                    window,
                    paths=project.paths,
                    variables=variables,
                    storage_root=self.storage,
                )
        log = _PrintLog()
        # the envs the backends use (built by the Dagster warm-up; reused here)
        script = self.plans["python_script_land_raw_events"]
        glue = self.plans["glue_job_processing_script"]
        image = self.plans["ecr_container_creation"]
        self.script_env = ensure_python_env(home, "python3", script.requirements_file, log)
        self.glue_env = ensure_python_env(home, "python3", glue.requirements_file, log)
        self.nb_env = ensure_python_env(home, "python3", image.requirements_file, log)

        # the warehouse: one fakesnow server for the whole benchmark, set up once (untimed)
        start = time.perf_counter()
        warehouse_dir = root / "warehouse"
        self.server = stack.enter_context(fakesnow_server(warehouse_dir))
        self.server_start_s = time.perf_counter() - start
        self.stages = dict(variables.stages)
        self._setup_warehouse()

    # -- the tools

    def run_script(self) -> float:
        plan = self.plans["python_script_land_raw_events"]
        from ml_pipelines.local.python_script import script_command

        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if plan.lib_dir is not None:
            env["PYTHONPATH"] = str(plan.lib_dir)
        return _timed_subprocess(script_command(self.script_env.python, plan), env=env, cwd=plan.script_dir)

    def run_glue(self) -> float:
        from ml_pipelines.local.glue import glue_arguments, python_path, spark_submit_args

        plan = self.plans["glue_job_processing_script"]
        env = {
            **os.environ,
            "PYSPARK_SUBMIT_ARGS": spark_submit_args("local[*]", list(plan.jars)),
            "PYSPARK_PYTHON": str(self.glue_env.python),
            "PYTHONPATH": python_path(plan),
            "PYTHONUNBUFFERED": "1",
            "SPARK_LOCAL_IP": "127.0.0.1",
            "ML_PIPELINES_STORAGE_ROOT": str(self.storage),
        }
        cwd = Path(tempfile.mkdtemp(dir=self.work))
        command = [str(self.glue_env.python), str(plan.script), *glue_arguments(plan)]
        try:
            return _timed_subprocess(command, env=env, cwd=cwd)
        finally:
            shutil.rmtree(cwd, ignore_errors=True)

    def run_notebook(self, step: str) -> float:
        plan = self.plans[step]
        output = self.storage / plan.output_uri[len("s3://") :] / f"{plan.notebook.stem}.ipynb"
        output.parent.mkdir(parents=True, exist_ok=True)
        cwd = Path(tempfile.mkdtemp(dir=self.work))
        parameters = {**plan.parameters, "output_dir": str(cwd / "output"), "ENV": "LOCAL"}
        env = {**os.environ, "JUPYTER_PATH": str(self.nb_env.jupyter_path), "PYTHONPATH": str(plan.lib_dir)}
        command = [
            PAPERMILL,
            str(plan.notebook),
            str(output),
            "-k",
            self.nb_env.kernel_name,
            "-l",
            "python",
            "--cwd",
            str(cwd),
            "--no-progress-bar",
            "-y",
            json.dumps(parameters),
        ]
        try:
            elapsed = _timed_subprocess(command, env=env, cwd=cwd)
            for f in (cwd / "output").rglob("*"):  # the file the SQL loads, where the stage sees it
                shutil.copy(f, output.parent / f.name)
            return elapsed
        finally:
            shutil.rmtree(cwd, ignore_errors=True)

    def run_sql(self) -> float:
        import snowflake.connector

        plan = self.plans["write_to_snowflake"]
        start = time.perf_counter()
        with snowflake.connector.connect(**self.server, database="ML_PIPELINES", schema=plan.schema) as conn:
            for sql_file in plan.files:
                for cursor in conn.execute_string(sql_file.text):
                    cursor.fetchall()
            rows = conn.cursor().execute("SELECT COUNT(*) FROM CONTENT_FORECAST_DAILY").fetchone()[0]
        elapsed = time.perf_counter() - start
        if rows != 8:
            raise SystemExit(f"by-hand SQL: expected 8 rows, got {rows}")
        return elapsed

    def _setup_warehouse(self) -> None:
        import snowflake.connector

        schema = self.plans["write_to_snowflake"].schema
        with snowflake.connector.connect(**self.server) as conn:
            cur = conn.cursor()
            cur.execute("CREATE DATABASE IF NOT EXISTS ML_PIPELINES")
            cur.execute("USE DATABASE ML_PIPELINES")
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            cur.execute(f"USE SCHEMA {schema}")
            for name, uri in self.stages.items():
                local = self.storage / uri[len("s3://") :]
                cur.execute(f"CREATE OR REPLACE STAGE {name} URL='file://{local.as_posix().rstrip('/')}/'")

    def run_all(self) -> dict[str, float]:
        if self.storage.exists():
            shutil.rmtree(self.storage)
        self.storage.mkdir(parents=True)
        self.work.mkdir(parents=True, exist_ok=True)
        return {
            "python_script_land_raw_events": self.run_script(),
            "glue_job_processing_script": self.run_glue(),
            "sagemaker_notebook_job_processing_script": self.run_notebook("sagemaker_notebook_job_processing_script"),
            "sagemaker_notebook_job_processing_script_v2": self.run_notebook(
                "sagemaker_notebook_job_processing_script_v2"
            ),
            "write_to_snowflake": self.run_sql(),
        }


class _PrintLog:
    def info(self, message: str) -> None:
        print(f"  {message}", flush=True)


def _timed_subprocess(command: list[str], *, env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(command)}\n{proc.stdout[-3000:]}")
    return elapsed


# ------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--partition", default="2024-01-05")
    parser.add_argument("--keep", action="store_true", help="keep the tmp LOCAL home and print its path")
    opts = parser.parse_args()
    warnings.simplefilter("ignore")  # Dagster's deprecation/preview warnings: figures only

    from dagster import AssetKey, instance_for_test

    tmp = Path(tempfile.mkdtemp(prefix="bench-local-"))
    home, hand_root = tmp / "home", tmp / "hand"
    print(
        f"bench_local: partition {opts.partition}, {opts.repeat} repetitions, {os.cpu_count()} CPUs, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )
    try:
        with ExitStack() as stack:
            instance = stack.enter_context(instance_for_test())
            dagster_path = DagsterPath(home, instance)
            print(f"code location loaded in {dagster_path.load_s:.2f}s", flush=True)

            # warm-up (untimed): builds the envs, first JVM / kernel starts, file caches
            start = time.perf_counter()
            for pipeline in STEPS:
                dagster_path.materialize(pipeline, opts.partition)
            print(f"warm-up through Dagster (env builds included): {time.perf_counter() - start:.1f}s", flush=True)
            hand = HandPath(home, hand_root, opts.partition, stack)
            print(f"fakesnow server start (by hand: once; Dagster path: per SQL step): {hand.server_start_s:.2f}s")
            start = time.perf_counter()
            hand.run_all()
            print(f"warm-up by hand: {time.perf_counter() - start:.1f}s", flush=True)

            a_totals, b_totals, a_pipelines = [], [], {p: [] for p in STEPS}
            a_steps: dict[str, list[dict[str, float]]] = {}
            b_steps: dict[str, list[float]] = {}

            def run_a() -> None:
                shutil.rmtree(dagster_path.storage, ignore_errors=True)
                total = 0.0
                for pipeline in STEPS:
                    elapsed, result = dagster_path.materialize(pipeline, opts.partition)
                    a_pipelines[pipeline].append(elapsed)
                    total += elapsed
                    for step, times in dagster_path.step_times(result).items():
                        a_steps.setdefault(f"{pipeline}/{step}" if step.startswith("(") else step, []).append(times)
                a_totals.append(total)

            def run_b() -> None:
                times = hand.run_all()
                for step, elapsed in times.items():
                    b_steps.setdefault(step, []).append(elapsed)
                b_totals.append(sum(times.values()))

            for rep in range(opts.repeat):
                order = (run_a, run_b) if rep % 2 == 0 else (run_b, run_a)  # alternate who goes first
                for run in order:
                    run()
                print(f"rep {rep + 1}: (a) Dagster {a_totals[-1]:.2f}s  (b) by hand {b_totals[-1]:.2f}s", flush=True)

            image_runs = []
            for _ in range(max(opts.repeat, 5)):
                wall, result = dagster_path.materialize(FORECAST, opts.partition, ["ecr_container_creation"])
                image = AssetKey([FORECAST, "ecr_container_creation"])
                meta = next(
                    e.materialization.metadata
                    for e in result.get_asset_materialization_events()
                    if e.asset_key == image
                )
                image_runs.append((meta["duration_s"].value, wall, meta["status"].value))
    finally:
        if opts.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(f"{'step':58} {'dagster wall':>12} {'backend':>9} {'by hand':>9}  (medians, s)")
    for pipeline, steps in STEPS.items():
        for step in [f"{pipeline}/(run: before first step)", *steps, f"{pipeline}/(run: after last step)"]:
            a = a_steps.get(step, [])
            wall = median([t["wall"] for t in a])
            backend = median([t["backend"] for t in a])
            by_hand = median(b_steps[step]) if step in b_steps else float("nan")
            label = step if step.startswith(pipeline) else f"{pipeline}/{step}"
            print(f"{label:58} {wall:12.2f} {backend:9.2f} {by_hand:9.2f}")
    for pipeline, values in a_pipelines.items():
        print(f"{'run wall, ' + pipeline:58} {median(values):12.2f}")
    # where (a) - (b) goes: Dagster's run bookkeeping outside the steps, then each step's difference
    bookkeeping = sum(
        median(a_pipelines[p]) - sum(median([t["wall"] for t in a_steps.get(s, [])]) for s in steps)
        for p, steps in STEPS.items()
    )
    parts = [f"run bookkeeping (run wall - step walls) {bookkeeping:+.2f}s"]
    for step in (s for steps in STEPS.values() for s in steps):
        diff = median([t["wall"] for t in a_steps.get(step, [])]) - (median(b_steps[step]) if step in b_steps else 0.0)
        parts.append(f"{step} {diff:+.2f}s")
    a, b = median(a_totals), median(b_totals)
    print()
    print(f"(a) Dagster materialization, both pipelines: median {a:.2f}s  runs {[round(x, 2) for x in a_totals]}")
    print(f"(b) same tools by hand:                     median {b:.2f}s  runs {[round(x, 2) for x in b_totals]}")
    print(
        f"overhead ratio (a)/(b): {a / b:.3f}  (target <= 1.3); per repetition "
        f"{[round(x / y, 3) for x, y in zip(a_totals, b_totals, strict=True)]}"
    )
    print("(a) - (b) by part (medians): " + "; ".join(parts))
    durations = [d for d, _, _ in image_runs]
    statuses = sorted({s for _, _, s in image_runs})
    print(
        f"image step, unchanged requirements: median duration_s {median(durations):.3f}s "
        f"(max {max(durations):.3f}s; run wall median {median([w for _, w, _ in image_runs]):.2f}s; "
        f"status {', '.join(statuses)}; target <= 1 s)"
    )


if __name__ == "__main__":
    main()
