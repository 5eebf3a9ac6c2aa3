"""Measure shape variants with the real CLI, and summarise what was measured.

  run_shapes.py run [--sizes 1000] [--repeat 3] [--label L] VARIANT ...
      `dagster definitions validate -m location` with BENCH_VARIANT=<variant>: wall time, peak RSS
      (os.wait4 ru_maxrss) and user+sys CPU of the whole process (CPU is steadier than wall on a
      shared machine). Variants are interleaved within each round, the order rotated per round;
      medians printed, every run appended as a JSON line to the results file.
  run_shapes.py summary [LABEL[,LABEL...]] [--size N]
      per variant, over the results whose label contains one of the LABELs: median/min wall,
      median/max RSS, median/min CPU. Noise only adds time: the minimum is the steadiest estimate.
  run_shapes.py list
      the variants (variants.py).

Results: bench/results/shapes.jsonl (git-ignored; --results PATH to change).
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
REPO = HERE.parents[1]
RESULTS = REPO / "bench" / "results" / "shapes.jsonl"
DAGSTER = str(Path(sys.executable).with_name("dagster"))
sys.path.insert(0, str(HERE))
from variants import VARIANTS, check  # noqa: E402


def variant_env(home: str) -> dict[str, str]:
    """A location process's environment: this folder and this worktree's ml_pipelines first."""
    path = os.pathsep.join(p for p in (str(HERE), str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "DAGSTER_HOME": home, "PYTHONPATH": path}


def measure(variant: str, size: int, env: dict) -> tuple[float, float, float]:
    """(wall s, peak RSS MiB, user+sys CPU s) of one validate run."""
    env = {**env, "BENCH_PIPELINES": str(size), "BENCH_VARIANT": variant}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [DAGSTER, "definitions", "validate", "-m", "location"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{variant}@{size} failed:\n{out.decode(errors='replace')[-3000:]}")
    return elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def run(opts: argparse.Namespace) -> None:
    check(opts.variants)
    opts.results.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env = variant_env(tmp)
        for size in (int(s) for s in opts.sizes.split(",")):
            runs: dict[str, list] = {v: [] for v in opts.variants}
            for r in range(opts.repeat):
                order = opts.variants[r % len(opts.variants) :] + opts.variants[: r % len(opts.variants)]
                for v in order:
                    runs[v].append(measure(v, size, env))
                    wall, rss, cpu = runs[v][-1]
                    print(
                        f"  round {r} {v}@{size}: {wall:.2f} s {rss:.0f} MiB cpu {cpu:.2f} s "
                        f"(load {os.getloadavg()[0]:.1f})",
                        file=sys.stderr,
                        flush=True,
                    )
            print(f"\n{size} pipelines, {opts.repeat} interleaved rounds {opts.label}")
            print(
                f"{'variant':24} {'median s':>8} {'min s':>6} {'max s':>6} {'MiB med':>7} {'MiB max':>7} {'cpu med':>7}"
            )
            for v, rs in runs.items():
                ts, ms, cs = [r[0] for r in rs], [r[1] for r in rs], [r[2] for r in rs]
                print(
                    f"{v:24} {statistics.median(ts):8.2f} {min(ts):6.2f} {max(ts):6.2f} "
                    f"{statistics.median(ms):7.0f} {max(ms):7.0f} {statistics.median(cs):7.2f}",
                    flush=True,
                )
                with open(opts.results, "a") as f:
                    f.write(
                        json.dumps(
                            {
                                "variant": v,
                                "size": size,
                                "runs": rs,
                                "label": opts.label,
                                "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                            }
                        )
                        + "\n"
                    )
    print(f"\nresults appended to {opts.results}")


def summary(opts: argparse.Namespace) -> None:
    if not opts.results.exists():
        raise SystemExit(f"no results yet ({opts.results}): run `run_shapes.py run ...` first")
    rows: dict = {}
    for line in opts.results.read_text().splitlines():
        r = json.loads(line)
        if not any(lbl in r["label"] for lbl in opts.labels.split(",")) or (opts.size and r["size"] != opts.size):
            continue
        rows.setdefault((r["size"], r["variant"]), []).extend(r["runs"])
    print(
        f"{'size':>5} {'variant':26} {'n':>2} {'wall med':>8} {'wall min':>8} {'MiB med':>7} {'MiB max':>7} "
        f"{'cpu med':>7} {'cpu min':>7}"
    )
    for (n, v), runs in rows.items():
        w, m = [r[0] for r in runs], [r[1] for r in runs]
        c = [r[2] for r in runs if len(r) > 2]  # the earliest results have no CPU time
        cpu_med, cpu_min = (statistics.median(c), min(c)) if c else (float("nan"), float("nan"))
        print(
            f"{n:>5} {v:26} {len(runs):>2} {statistics.median(w):8.2f} {min(w):8.2f} {statistics.median(m):7.0f} "
            f"{max(m):7.0f} {cpu_med:7.2f} {cpu_min:7.2f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=RESULTS)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="measure variants")
    p.add_argument("--sizes", default="1000")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--label", default="")
    p.add_argument("variants", nargs="+")
    p = sub.add_parser("summary", help="summarise the results file")
    p.add_argument("labels", nargs="?", default="", help="comma-separated label substrings (default: all)")
    p.add_argument("--size", type=int)
    sub.add_parser("list", help="list the variants")
    opts = ap.parse_args()
    if opts.command == "run":
        run(opts)
    elif opts.command == "summary":
        summary(opts)
    else:
        for name, options in VARIANTS.items():
            print(f"{name:26} {options}")


if __name__ == "__main__":
    main()
