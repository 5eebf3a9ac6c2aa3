"""Measure shape variants with the real CLI: `dagster definitions validate -m v_<name>`.

Wall time, peak RSS (os.wait4 ru_maxrss) and user+sys CPU time of the whole process (CPU time
is steadier than wall on a shared 2-core machine), variants interleaved within
each round (order rotated per round), medians reported. Results also appended as JSON lines to
bench/shapes/results.jsonl.

Usage: python bench/shapes/run_shapes.py --sizes 1000 --repeat 3 base direct group_part ...
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DAGSTER = str(Path(sys.executable).with_name("dagster"))


def measure(variant: str, size: int, env: dict) -> tuple[float, float, float]:
    """(wall s, peak RSS MiB, user+sys CPU s) of one validate run."""
    env = {**env, "BENCH_PIPELINES": str(size)}
    start = time.perf_counter()
    proc = subprocess.Popen([DAGSTER, "definitions", "validate", "-m", f"v_{variant}"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{variant}@{size} failed:\n{out.decode(errors='replace')[-3000:]}")
    return elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--label", default="")
    ap.add_argument("variants", nargs="+")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "dagster.yaml").write_text("")
        env = {**os.environ, "DAGSTER_HOME": tmp, "PYTHONPATH": str(HERE)}
        for size in (int(s) for s in opts.sizes.split(",")):
            runs: dict[str, list] = {v: [] for v in opts.variants}
            for r in range(opts.repeat):
                order = opts.variants[r % len(opts.variants):] + opts.variants[: r % len(opts.variants)]
                for v in order:
                    runs[v].append(measure(v, size, env))
                    print(f"  round {r} {v}@{size}: {runs[v][-1][0]:.2f} s {runs[v][-1][1]:.0f} MiB cpu {runs[v][-1][2]:.2f} s "
                          f"(load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
            print(f"\n{size} pipelines, {opts.repeat} interleaved rounds {opts.label}")
            print(f"{'variant':24} {'median s':>8} {'min s':>6} {'max s':>6} {'MiB med':>7} {'MiB max':>7} {'cpu med':>7}")
            for v, rs in runs.items():
                ts, ms, cs = [r[0] for r in rs], [r[1] for r in rs], [r[2] for r in rs]
                print(f"{v:24} {statistics.median(ts):8.2f} {min(ts):6.2f} {max(ts):6.2f} "
                      f"{statistics.median(ms):7.0f} {max(ms):7.0f} {statistics.median(cs):7.2f}", flush=True)
                with open(HERE / "results.jsonl", "a") as f:
                    f.write(json.dumps({"variant": v, "size": size, "runs": rs, "label": opts.label,
                                        "at": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")


if __name__ == "__main__":
    main()
