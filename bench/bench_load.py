"""Load-time benchmark: `dagster definitions validate` on generated projects of 10, 100
and 1,000 pipelines, for the factory and for a hand-written baseline, in one run.

Prints wall time (median of --repeat runs) and peak RSS of the whole process, and the
factory/baseline ratios. The factory is measured twice per round: "cold", the first load
after the configs changed (no load cache, see ml_pipelines/config/load_store.py), and the
usual load of every later process, which reuses that cache. Usage: python bench/bench_load.py [--repeat 3] [--sizes 10,100,1000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from generate import generate  # noqa: E402

DAGSTER = str(Path(sys.executable).with_name("dagster"))


def measure(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(seconds, peak RSS MiB) of one validate run, measured with wait4."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"validate failed: {' '.join(args)}\n{output[-3000:]}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="10,100,1000")
    opts = parser.parse_args()
    sizes = [int(s) for s in opts.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        dagster_home = Path(tmp) / "dagster_home"
        dagster_home.mkdir()
        (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        for size in sizes:
            project = generate(Path(tmp) / f"p{size}", size)
            # bench/ for baseline_location, then this worktree's ml_pipelines (not the venv's install)
            path = os.pathsep.join(p for p in (str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")) if p)
            base_env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "PYTHONPATH": path}
            factory_env = {
                **base_env,
                "ML_PIPELINES_PROJECT_DIR": str(project),
                "ML_PIPELINES_ENV": "LOCAL",
                "ML_PIPELINES_HOME": str(Path(tmp) / "home"),
                "ML_PIPELINES_CACHE_DIR": str(Path(tmp) / "home" / "cache"),  # the load cache
                "ML_PIPELINES_STRICT": "1",
            }
            baseline_env = {**base_env, "BENCH_PIPELINES": str(size)}
            results = {"factory": [], "factory_cold": [], "baseline": []}
            validate_factory = [DAGSTER, "definitions", "validate", "-m", "ml_pipelines.definitions"]
            cache_dir = Path(factory_env["ML_PIPELINES_CACHE_DIR"])
            for _ in range(opts.repeat):  # interleaved so all see the same machine state
                # cold: the first load after the configs changed (no load cache); then the
                # usual load of every later process, which reuses it
                shutil.rmtree(cache_dir, ignore_errors=True)
                results["factory_cold"].append(measure(validate_factory, factory_env))
                results["factory"].append(measure(validate_factory, factory_env))
                results["baseline"].append(
                    measure([DAGSTER, "definitions", "validate", "-m", "baseline_location"], baseline_env)
                )
            row = {"size": size}
            for name, runs in results.items():
                row[name] = (statistics.median(t for t, _ in runs), max(m for _, m in runs))
            rows.append(row)
            print(_line(row), flush=True)
    print("\ngoal at 1,000 pipelines: <= 10 s and <= 400 MB (Airflow 3.3 + dag-factory: 10.5 s)")


def _line(row: dict) -> str:
    (ft, fm), (ct, cm), (bt, bm) = row["factory"], row["factory_cold"], row["baseline"]
    return (
        f"{row['size']:>5} pipelines | factory {ft:6.2f} s {fm:4.0f} MiB (cold cache {ct:6.2f} s {cm:4.0f} MiB)"
        f" | baseline {bt:6.2f} s {bm:4.0f} MiB | ratio time {ft / bt:4.2f} (cold {ct / bt:4.2f}) memory {fm / bm:4.2f}"
    )


if __name__ == "__main__":
    main()
