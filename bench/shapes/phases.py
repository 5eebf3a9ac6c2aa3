"""CPU time (and wall) of the main load phases of `dagster definitions validate`, measured by
wrapping a few top-level functions (negligible overhead, unlike cProfile).

Usage: BENCH_PIPELINES=1000 python bench/shapes/phases.py base direct ... [--repeat 3]
Each variant (variants.py) runs in its own subprocess; rounds are interleaved; medians printed.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run_shapes import variant_env  # noqa: E402
from variants import check  # noqa: E402

# (label, module, qualified attribute)
PHASES = [
    ("import dagster", None, None),
    ("build defs (module import)", "dagster._core.code_pointer", "load_python_module"),
    (
        "Definitions -> repository",
        "dagster._core.definitions.definitions_class",
        "_create_repository_using_definitions_args",
    ),
    ("RepositorySnap.from_def", "dagster._core.remote_representation.external_data", "RepositorySnap.from_def"),
    ("  asset node snaps", "dagster._core.remote_representation.external_data", "asset_node_snaps_from_repo"),
    ("  __ASSET_JOB snapshot", "dagster._core.snap.job_snapshot", "JobSnap.from_job_def"),
    ("  schedule snaps", "dagster._core.remote_representation.external_data", "ScheduleSnap.from_def"),
    ("workspace (location load)", "dagster._core.workspace.context", "WorkspaceProcessContext.__init__"),
    (
        "validate_partitions",
        "dagster._core.definitions.assets.graph.base_asset_graph",
        "BaseAssetGraph.validate_partitions",
    ),
]


def child(variant: str) -> None:
    import gc

    t0c, t0w = time.process_time(), time.perf_counter()
    gc_acc = {"t": 0.0, "n": 0, "start": 0.0}

    def gc_cb(phase, info):
        if phase == "start":
            gc_acc["start"] = time.process_time()
        else:
            gc_acc["t"] += time.process_time() - gc_acc["start"]
            gc_acc["n"] += 1

    gc.callbacks.append(gc_cb)
    import importlib

    import dagster  # noqa: F401

    totals = {"import dagster": [time.process_time() - t0c, time.perf_counter() - t0w, 1]}
    depth = {}

    for label, mod, attr in PHASES[1:]:
        module = importlib.import_module(mod)
        owner, name = module, attr
        if "." in attr:
            cls, name = attr.split(".")
            owner = getattr(module, cls)
        raw = next(c.__dict__[name] for c in getattr(owner, "__mro__", [owner]) if name in vars(c))
        is_cm = isinstance(raw, classmethod)
        fn = raw.__func__ if is_cm else raw
        totals[label] = [0.0, 0.0, 0]

        def wrap(fn=fn, label=label):
            def wrapper(*a, **k):
                if depth.get(label):
                    return fn(*a, **k)
                depth[label] = 1
                c, w = time.process_time(), time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    depth[label] = 0
                    totals[label][0] += time.process_time() - c
                    totals[label][1] += time.perf_counter() - w
                    totals[label][2] += 1

            return wrapper

        new = wrap()
        setattr(owner, name, classmethod(new) if is_cm else new)
        # functions imported by name elsewhere: patch the common importers too
        if owner is module:
            for other in list(sys.modules.values()):
                if other is not None and getattr(other, name, None) is fn:
                    setattr(other, name, new)

    os.environ["BENCH_VARIANT"] = variant
    sys.argv = ["dagster", "definitions", "validate", "-m", "location"]
    from dagster._cli import main as cli_main

    try:
        cli_main()
    except SystemExit as e:
        if e.code not in (0, None):
            raise
    totals["total process"] = [time.process_time() - t0c, time.perf_counter() - t0w, 1]
    totals["of which cyclic GC"] = [gc_acc["t"], 0.0, gc_acc["n"]]
    print("PHASES " + json.dumps(totals), flush=True)


def main() -> None:
    if sys.argv[1] == "--child":
        child(sys.argv[2])
        return
    args = sys.argv[1:]
    repeat = 3
    if "--repeat" in args:
        i = args.index("--repeat")
        repeat = int(args[i + 1])
        del args[i : i + 2]
    check(args)
    results: dict[str, list[dict]] = {v: [] for v in args}
    with tempfile.TemporaryDirectory() as home:
        (Path(home) / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env = variant_env(home)
        for r in range(repeat):
            for v in args[r % len(args) :] + args[: r % len(args)]:
                out = subprocess.run([sys.executable, __file__, "--child", v], env=env, capture_output=True, text=True)
                line = [x for x in out.stdout.splitlines() if x.startswith("PHASES ")]
                if not line:
                    raise SystemExit(f"{v} failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
                results[v].append(json.loads(line[0][7:]))
    n = os.environ.get("BENCH_PIPELINES", "10")
    labels = [p[0] for p in PHASES] + ["total process", "of which cyclic GC"]
    print(f"\nCPU seconds per phase (median of {repeat}), {n} pipelines; wall of total in last row")
    print(f"{'phase':32}" + "".join(f"{v[:16]:>17}" for v in args))
    for label in labels:
        cells = []
        for v in args:
            vals = [r[label][0] for r in results[v] if label in r]
            cells.append(f"{statistics.median(vals):17.2f}" if vals else f"{'-':>17}")
        print(f"{label:32}" + "".join(cells))
    print(
        f"{'total wall':32}"
        + "".join(f"{statistics.median(r['total process'][1] for r in results[v]):17.2f}" for v in args)
    )


if __name__ == "__main__":
    main()
