"""A job per pipeline, resolved against the pipeline's own assets.

What a job per pipeline gives the UI: its runs are named by the pipeline in the runs list,
the pipeline's schedule targets it (so each asset's page lists the schedule under
*Automation details*), and the job's page is the pipeline's graph with *Materialize all*.

`define_asset_job` left to Dagster is resolved against the whole code location: each job
scans every asset (30-54 s at 1,000 pipelines). Resolved here against a graph of the
pipeline's own assets (its external waits and the other pipelines' steps they await stand
in as external assets), a job costs about 4 ms at load (docs/architecture.md, "Load time").
"""

from __future__ import annotations

from typing import Any

from dagster import AssetKey, AssetsDefinition, AssetSpec, ExecutorDefinition, JobDefinition, define_asset_job
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph

from ml_pipelines.config.loader import LoadedPipeline


def _specs(item: AssetsDefinition | AssetSpec) -> list[AssetSpec]:
    return list(item.specs) if isinstance(item, AssetsDefinition) else [item]


def pipeline_job(
    pipeline: LoadedPipeline,
    built: list[AssetsDefinition | AssetSpec],
    tags: dict[str, str],
    resources: dict[str, Any],
    executor: ExecutorDefinition | None,
) -> JobDefinition | None:
    """The job that materializes every runnable step of the pipeline, named by its id; None
    when the pipeline has no runnable step (only waits)."""
    steps = [item for item in built if isinstance(item, AssetsDefinition) and item.is_executable]
    if not steps:
        return None
    defined = {spec.key for item in built for spec in _specs(item)}
    upstream = {dep.asset_key for item in built for spec in _specs(item) for dep in spec.deps} - defined
    stand_ins = [AssetsDefinition(specs=[spec]) for item in built if isinstance(item, AssetSpec) for spec in [item]]
    stand_ins += [AssetsDefinition(specs=[AssetSpec(key)]) for key in sorted(upstream, key=AssetKey.to_string)]
    graph = AssetGraph.from_assets([*steps, *stand_ins])
    pid = pipeline.config.pipeline_id
    keys = [key for item in steps for key in item.keys]
    job = define_asset_job(
        name=pid,
        selection=keys,
        tags=tags,
        description=f"Every step of pipeline {pid} ({pipeline.source.name}).",
    )
    return job.resolve(asset_graph=graph, default_executor_def=executor, resource_defs=_needed(steps, resources))


def _needed(steps: list[AssetsDefinition], resources: dict[str, Any]) -> dict[str, Any]:
    """The resources the steps require (and those require): a job's run-config schema, built
    and snapshotted per job at load, covers each of its resources."""
    from dagster._core.execution.context.init import ResourceDefinition

    wanted = {key for step in steps for key in step.op.required_resource_keys}
    keys: set[str] = set()
    while wanted:
        key = wanted.pop()
        if key in keys or key not in resources:
            continue
        keys.add(key)
        resource = resources[key]
        definition = (
            resource
            if isinstance(resource, ResourceDefinition)
            else getattr(resource, "get_resource_definition", lambda: None)()
        )
        wanted |= set(getattr(definition, "required_resource_keys", ()) or ())
    return {key: resources[key] for key in sorted(keys)}
