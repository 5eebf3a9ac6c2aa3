"""Usability check of a shape: a schedule tick gives the right RunRequest, and running it
materializes exactly that pipeline's five steps for that partition, with the run tags.

Usage: BENCH_PIPELINES=60 python bench/shapes/check_usable.py base direct group_all_direct ...
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("BENCH_PIPELINES", "60")

from dagster import AssetKey, DagsterInstance, RunRequest, build_schedule_context  # noqa: E402

import shapes_lib as lib  # noqa: E402


def check(variant: str) -> None:
    mod = importlib.import_module(f"v_{variant}")
    defs = mod.defs
    repo = defs.get_repository_def()
    i = 7  # pipeline 7: cron CRONS[7] = "30 2 * * *", start day 8
    pid, cron = lib.pid_of(i), lib.cron_of(i)
    keys = lib.step_keys(pid)
    tick = datetime(2024, 3, 10, 2, 30, tzinfo=timezone.utc)
    sched_name = f"{pid}_schedule" if any(s.name == f"{pid}_schedule" for s in repo.schedule_defs) \
        else "cron_" + cron.replace(" ", "_").replace("*", "x")
    schedule = defs.get_schedule_def(sched_name)
    with DagsterInstance.ephemeral() as instance:
        ctx = build_schedule_context(instance=instance, scheduled_execution_time=tick, repository_def=repo)
        result = schedule.evaluate_tick(ctx)
        reqs = [r for r in result.run_requests if set(r.asset_selection or []) == set(keys)]
        assert len(reqs) == 1, result.run_requests
        req: RunRequest = reqs[0]
        assert req.partition_key == "2024-03-09", req.partition_key  # the window that ends at the tick
        assert req.tags.get(lib.PIPELINE_TAG) == pid, req.tags
        assert schedule.job_name == "__ASSET_JOB" or variant.startswith("sched_target")
        # what the daemon does: a run of the implicit asset job with the request's selection
        job = defs.resolve_implicit_job_def_def_for_assets(keys)
        res = job.execute_in_process(instance=instance, partition_key=req.partition_key,
                                     asset_selection=list(req.asset_selection), tags=req.tags)
        assert res.success
        mats = res.get_asset_materialization_events()
        got = [(e.asset_key, e.partition) for e in mats]
        assert sorted(got) == sorted((k, "2024-03-09") for k in keys), got
        assert [k for k, _ in got] == keys, "not in topological order"
        run = instance.get_run_by_id(res.run_id)
        assert run.tags.get(lib.PIPELINE_TAG) == pid and run.tags.get("dagster/partition") == "2024-03-09"
        # a single step of the pipeline (UI: materialize one asset)
        one = job.execute_in_process(instance=instance, partition_key="2024-03-08", asset_selection=[keys[2]])
        assert [e.asset_key for e in one.get_asset_materialization_events()] == [keys[2]]
        # the upstream pipeline's sink is lineage-upstream of this pipeline's wait
        graph = repo.asset_graph
        wait = AssetKey([pid, lib.WAIT])
        parents = graph.get(wait).parent_keys if graph.has(wait) else set()
        print(f"{variant:28} OK: tick {tick:%Y-%m-%d %H:%M} -> partition {req.partition_key}, "
              f"{len(mats)} materializations, job {job.name}, ops in run: "
              f"{sorted({e.step_key for e in mats})}, wait parents {sorted(p.to_user_string() for p in parents)}")


if __name__ == "__main__":
    for v in sys.argv[1:]:
        check(v)
