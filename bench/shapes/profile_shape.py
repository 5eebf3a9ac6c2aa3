"""Profile one variant under the real CLI and print the cumulative time of the main phases.

Usage: BENCH_PIPELINES=1000 python bench/shapes/profile_shape.py base [--top 40]
(Wall-clock profile; cProfile inflates pure-Python code roughly 1.5-2x: compare phases between
variants, not with wall.)
"""

from __future__ import annotations

import cProfile
import os
import pstats
import sys
import tempfile

from pathlib import Path

HERE = Path(__file__).resolve().parent
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


def main() -> None:
    variant = sys.argv[1]
    top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 0
    out = Path(tempfile.gettempdir()) / f"shape_{variant}_{os.environ.get('BENCH_PIPELINES', '10')}.prof"
    with tempfile.TemporaryDirectory() as home:
        (Path(home) / "dagster.yaml").write_text("")
        os.environ["DAGSTER_HOME"] = home
        sys.path.insert(0, str(HERE))
        sys.argv = ["dagster", "definitions", "validate", "-m", f"v_{variant}"]
        from dagster._cli import main as cli_main

        prof = cProfile.Profile()
        prof.enable()
        try:
            cli_main()
        except SystemExit:
            pass
        prof.disable()
        prof.dump_stats(out)
    stats = pstats.Stats(str(out)).stats
    print(f"\n{variant} @ {os.environ.get('BENCH_PIPELINES', '10')} pipelines (profile {out})")
    for label, (path, func) in PHASES.items():
        hits = [(v[3], v[1]) for (f, _, fn), v in stats.items() if f.endswith(path) and fn == func]
        if hits:
            cum = max(c for c, _ in hits)
            calls = sum(n for _, n in hits)
            print(f"  {label:45} {cum:7.2f} s  ({calls} calls)")
    if top:
        pstats.Stats(str(out)).sort_stats("cumulative").print_stats(top)


if __name__ == "__main__":
    main()
