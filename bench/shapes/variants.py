"""The shape variants: one table, name -> options, and `defs_for(name)` which builds one.

Synthetic variants pass their options to `shapes_lib.build` (see its docstring for each option).
Two other sources:
  source="empty"    an empty Definitions: the floor (CLI + `import dagster` + instance)
  source="factory"  the real factory (ml_pipelines.definitions) on a project of BENCH_PIPELINES
                    generated pipelines (bench/generate.py, cached under $TMPDIR). Options:
                    tree="head": import ml_pipelines from the worktree in BENCH_HEAD_TREE (default
                    /tmp/head_wt, e.g. `git worktree add /tmp/head_wt HEAD`) for A/B runs of a change;
                    gc_mode="freeze": gc.freeze() after the build; "off_during_build": the collector
                    off during the build, then freeze and back on.

This module imports nothing heavy, so the runners can check names without importing Dagster.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REALISTIC = dict(realistic=True, resources=True, sched_extras=True)  # today's factory shape, @multi_asset
WINNER = dict(REALISTIC, construct="direct", gc_mode="threshold")  # what the factory adopted

VARIANTS: dict[str, dict] = {
    "empty": dict(source="empty"),
    # baseline_location.py's shape, and one option changed at a time
    "base": dict(),
    "base_freeze": dict(gc_mode="freeze"),
    "base_threshold": dict(gc_mode="threshold"),
    "base_fth": dict(gc_mode="freeze_threshold"),
    "direct": dict(construct="direct"),
    "direct_shared_fn": dict(construct="direct_shared_fn"),
    "direct_threshold": dict(construct="direct", gc_mode="threshold"),
    "direct_t5k": dict(construct="direct", gc_mode="threshold:5000,10,10"),
    "direct_t20k": dict(construct="direct", gc_mode="threshold:20000,20,20"),
    "direct_freeze": dict(construct="direct", gc_mode="freeze"),
    "direct_freeze_threshold": dict(construct="direct", gc_mode="freeze_threshold"),
    "direct_gcoff": dict(construct="direct", gc_mode="disable"),
    "wait_nopart": dict(wait="nopart"),
    "wait_nodep": dict(wait="nodep"),
    "wait_none": dict(wait="none"),
    "nopartitions": dict(partitions_mode="none"),
    "tw_cron": dict(partitions_mode="tw_cron"),
    "daily": dict(partitions_mode="daily"),
    "sched_none": dict(schedules="none"),
    "sched_cron": dict(schedules="cron"),
    "sched_target": dict(schedules="target"),
    "sched_extras": dict(sched_extras=True),
    "resources": dict(resources=True),
    "group_part": dict(grouping="partitions"),
    "group_part_direct": dict(grouping="partitions", construct="direct"),
    "group_part_direct_fth": dict(grouping="partitions", construct="direct", gc_mode="freeze_threshold"),
    "group_part_direct_shared": dict(grouping="partitions", construct="direct_shared_fn"),
    "group_cron_direct": dict(grouping="cron", construct="direct"),
    "group_cron_direct_fth": dict(grouping="cron", construct="direct", gc_mode="freeze_threshold"),
    "group_all": dict(grouping="all"),
    "group_all_direct": dict(grouping="all", construct="direct"),
    "group_all_direct_fth": dict(grouping="all", construct="direct", gc_mode="freeze_threshold"),
    # factory-like: per-asset description/metadata/tags, op tags, RetryPolicy, resources
    "realistic": dict(REALISTIC),
    "realistic_threshold": dict(REALISTIC, gc_mode="threshold"),
    "realistic_fth": dict(REALISTIC, gc_mode="freeze_threshold"),
    "realistic_direct": dict(REALISTIC, construct="direct"),
    "realistic_direct_fth": dict(REALISTIC, construct="direct", gc_mode="freeze_threshold"),
    # the winner (realistic + OpDefinition/AssetsDefinition(specs=...) + raised GC thresholds) and variations
    "winner": dict(WINNER),
    "winner_nogc": dict(REALISTIC, construct="direct"),
    "winner_lean": dict(WINNER, realistic="lean"),  # no per-asset tags, one metadata entry
    "winner_grouped": dict(WINNER, grouping="cron"),  # one AssetsDefinition per cron
    "winner_waitnopart": dict(WINNER, wait="nopart"),  # unpartitioned external waits
    "winner_waitonedef": dict(WINNER, wait="onedef"),  # all waits in one AssetsDefinition(specs=...)
    # the real factory
    "factory": dict(source="factory"),
    "factory_head": dict(source="factory", tree="head"),
    "factory_freeze": dict(source="factory", gc_mode="freeze"),
    "factory_off": dict(source="factory", gc_mode="off_during_build"),
}


def check(names: list[str]) -> None:
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")


def defs_for(name: str):
    check([name])
    options = dict(VARIANTS[name])
    source = options.pop("source", "shapes")
    if source == "empty":
        from dagster import Definitions

        return Definitions()
    if source == "factory":
        return factory_defs(**options)
    from shapes_lib import build

    return build(**options)


def factory_defs(tree: str | None = None, gc_mode: str | None = None):
    import gc

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/, for generate.py
    from generate import generate

    n = int(os.environ.get("BENCH_PIPELINES", "10"))
    project = Path(os.environ.get("TMPDIR", "/tmp")) / f"ml_pipelines_bench_p{n}"
    if not (project / "model_configs").exists():
        generate(project, n)
    os.environ.update(
        ML_PIPELINES_PROJECT_DIR=str(project),
        ML_PIPELINES_ENV="LOCAL",
        ML_PIPELINES_HOME=str(project / ".home"),
        ML_PIPELINES_STRICT="1",
    )
    if tree == "head":
        sys.path.insert(0, os.environ.get("BENCH_HEAD_TREE", "/tmp/head_wt"))
    if gc_mode == "off_during_build":
        gc.disable()
    from ml_pipelines.definitions import defs

    if gc_mode in ("freeze", "off_during_build"):
        gc.freeze()
    gc.enable()
    return defs
