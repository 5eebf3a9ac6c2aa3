"""Profile one variant under the real CLI and print the cumulative time of the main phases,
and optionally the heaviest callees of some functions.

Usage: BENCH_PIPELINES=1000 python bench/shapes/profile_shape.py base [--top 40]
           [--callees FUNC_SUBSTRING ...] [--reuse]
--callees: per function whose "file:line(name)" contains the substring, its 15 heaviest callees.
--reuse: read the profile of an earlier run of the same variant and size instead of profiling again.
(Wall-clock profile; cProfile inflates pure-Python code roughly 1.5-2x: compare phases between
variants, not with wall.)
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]  # the variants, this worktree's ml_pipelines
from variants import check  # noqa: E402

PHASES = {
    "total": ("_cli/definitions.py", "definitions_validate_command_impl"),
    "import module (build defs)": ("_core/code_pointer.py", "load_python_module"),
    "  multi_asset decorator": ("decorators/asset_decorator.py", "inner"),
    "  OpDefinition.__init__": ("_core/definitions/op_definition.py", "__init__"),
    "  AssetsDefinition.__init__": ("assets/definition/assets_definition.py", "__init__"),
    "  AssetSpec.__new__": ("assets/definition/asset_spec.py", "__new__"),
    "  ScheduleDefinition.__init__": ("definitions/schedule_definition.py", "__init__"),
    "  TimeWindowPartitionsDefinition.__new__": ("partitions/definition/time_window.py", "__new__"),
    "Definitions -> repository": ("definitions_class.py", "_create_repository_using_definitions_args"),
    "RepositorySnap.from_def": ("remote_representation/external_data.py", "from_def"),
    "  asset_node_snaps_from_repo": ("remote_representation/external_data.py", "asset_node_snaps_from_repo"),
    "  job snapshot (__ASSET_JOB)": ("_core/snap/job_snapshot.py", "from_job_def"),
    "workspace asset graph validate_partitions": ("graph/base_asset_graph.py", "validate_partitions"),
    "  validate_partition_definition": ("partitions/definition/time_window.py", "validate_partition_definition"),
    "  snap.get_partitions_definition": ("partitions/snap/snap.py", "get_partitions_definition"),
    "resolve_dagster_type": ("_core/types/dagster_type.py", "resolve_dagster_type"),
    "serialize_value": ("dagster_shared/serdes/serdes.py", "serialize_value"),
    "deserialize_value": ("dagster_shared/serdes/serdes.py", "deserialize_value"),
}


def profile(variant: str, out: Path) -> None:
    with tempfile.TemporaryDirectory() as home:
        (Path(home) / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        os.environ["DAGSTER_HOME"] = home
        os.environ["BENCH_VARIANT"] = variant
        sys.argv = ["dagster", "definitions", "validate", "-m", "location"]
        from dagster._cli import main as cli_main

        prof = cProfile.Profile()
        prof.enable()
        try:
            cli_main()
        except SystemExit:
            pass
        prof.disable()
        prof.dump_stats(out)


def _short(key) -> str:
    f, line, fn = key
    return f"{f.split('site-packages/')[-1]}:{line}({fn})"


def callees(stats: dict, needle: str, n: int = 15) -> None:
    for key, (_, ncalls, _, cum, _) in stats.items():
        if needle not in _short(key):
            continue
        print(f"== {_short(key)} calls={ncalls} cum={cum:.2f}")
        found = [
            (v[3], v[1], _short(k2)) for k2, (*_, callers) in stats.items() for kk, v in callers.items() if kk == key
        ]
        for cum2, calls2, name in sorted(found, reverse=True)[:n]:
            print(f"   {cum2:7.2f} {calls2:7d} {name}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variant")
    ap.add_argument("--top", type=int, default=0)
    ap.add_argument("--callees", action="append", default=[])
    ap.add_argument("--reuse", action="store_true")
    opts = ap.parse_args()
    check([opts.variant])
    size = os.environ.get("BENCH_PIPELINES", "10")
    out = Path(tempfile.gettempdir()) / f"shape_{opts.variant}_{size}.prof"
    if not (opts.reuse and out.exists()):
        profile(opts.variant, out)
    stats = pstats.Stats(str(out)).stats
    print(f"\n{opts.variant} @ {size} pipelines (profile {out})")
    for label, (path, func) in PHASES.items():
        hits = [(v[3], v[1]) for (f, _, fn), v in stats.items() if f.endswith(path) and fn == func]
        if hits:
            cum = max(c for c, _ in hits)
            calls = sum(n for _, n in hits)
            print(f"  {label:45} {cum:7.2f} s  ({calls} calls)")
    if opts.top:
        pstats.Stats(str(out)).sort_stats("cumulative").print_stats(opts.top)
    for needle in opts.callees:
        callees(stats, needle)


if __name__ == "__main__":
    main()
