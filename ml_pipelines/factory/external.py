"""External waits (`type: ExternalTaskSensor`) as external assets in the lineage.

The one place that defines them, so the sensors that record their events can build on it.
"""

from __future__ import annotations

from dagster import AssetDep, AssetKey, AssetSpec, PartitionsDefinition

from ml_pipelines.config.loader import LoadedPipeline
from ml_pipelines.config.schema import ExternalWaitStep
from ml_pipelines.steps.registry import REGISTRY

EXTERNAL_PIPELINE_STEP = "__pipeline__"  # asset name standing for a whole awaited pipeline


def awaited_keys(step: ExternalWaitStep, pipeline_sinks: dict[str, list[AssetKey]]) -> list[AssetKey]:
    """The awaited step's key; for a whole pipeline, its last steps when it is loaded here."""
    details = step.external_dag_details
    if details.external_task_id:
        return [AssetKey([details.external_dag_id, details.external_task_id])]
    return pipeline_sinks.get(details.external_dag_id) or [AssetKey([details.external_dag_id, EXTERNAL_PIPELINE_STEP])]


def external_wait_spec(
    pipeline: LoadedPipeline,
    step: ExternalWaitStep,
    deps: list[AssetDep],
    partitions_def: PartitionsDefinition | None,
    owners: list[str],
    pipeline_sinks: dict[str, list[AssetKey]],
) -> AssetSpec:
    details = step.external_dag_details
    target = details.external_dag_id + (f".{details.external_task_id}" if details.external_task_id else "")
    return AssetSpec(
        key=AssetKey([pipeline.config.pipeline_id, step.name]),
        deps=[*deps, *(AssetDep(k) for k in awaited_keys(step, pipeline_sinks))],
        group_name=pipeline.config.pipeline_id,
        owners=owners,
        kinds=set(REGISTRY[step.kind].dagster_kinds),
        partitions_def=partitions_def,
        description=(
            f"Waits for {target} (states: {', '.join(details.allowed_states)}; "
            f"offset {details.execution_delta}); recorded by sensors, not materialized here."
        ),
        metadata={
            "step_kind": "external_wait",
            "external_dag_id": details.external_dag_id,
            "external_task_id": details.external_task_id or "",
            "allowed_states": list(details.allowed_states),
            "poke_interval_s": details.poke_interval,
            "timeout_s": details.timeout,
            "mode": details.mode,
            "execution_delta_s": details.execution_delta.total_seconds(),
        },
    )
