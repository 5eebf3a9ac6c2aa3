"""Config-load benchmark: `load_project` on generated projects of 10, 100 and 1,000 pipelines.

A benchmark that prints, not a test. For each size it generates a project with
`bench/generate.py` into a temp dir, runs one untimed load (the first load of a process
also imports nbformat and builds the Jinja and pydantic machinery: shown as "first"),
then `--repeat` timed loads, and prints the median wall and CPU time and the time per
pipeline. Wall time is what the code location pays; CPU time (this process only) is the
steadier figure when other work shares the machine.

Usage: python bench/bench_config_load.py [--repeat 5] [--sizes 10,100,1000]
Target (issue 3, Performance): 1,000 pipelines in <= 1.5 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from generate import generate  # noqa: E402

from ml_pipelines.config.loader import load_project  # noqa: E402


def timed_load(root: Path) -> tuple[float, float, int, int]:
    """(wall s, CPU s, pipelines, errors) of one load_project."""
    wall, cpu = time.perf_counter(), time.process_time()
    project = load_project(root)
    return time.perf_counter() - wall, time.process_time() - cpu, len(project.pipelines), len(project.errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed loads per size (default 5)")
    parser.add_argument("--sizes", default="10,100,1000", help="pipeline counts (default 10,100,1000)")
    opts = parser.parse_args()
    sizes = [int(s) for s in opts.sizes.split(",")]

    print(f"load_project: median of {opts.repeat} runs after one untimed first load; {os.cpu_count()} CPUs")
    header = (
        f"{'pipelines':>9}  {'first s':>8}  {'wall s':>8}  {'cpu s':>8}  {'ms/pipeline':>11}  {'min..max wall s':>15}"
    )
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(prefix="bench_config_load_") as tmp:
        for size in sizes:
            root = generate(Path(tmp) / f"p{size}", size)
            first, _, loaded, errors = timed_load(root)
            if loaded != size or errors:
                raise SystemExit(
                    f"{size} pipelines generated, {loaded} loaded, {errors} errors: the bench project is broken"
                )
            runs = [timed_load(root) for _ in range(opts.repeat)]
            walls = [r[0] for r in runs]
            wall = statistics.median(walls)
            cpu = statistics.median(r[1] for r in runs)
            print(
                f"{size:>9}  {first:>8.3f}  {wall:>8.3f}  {cpu:>8.3f}  {1000 * wall / size:>11.2f}"
                f"  {min(walls):>6.3f}..{max(walls):<7.3f}"
            )


if __name__ == "__main__":
    main()
