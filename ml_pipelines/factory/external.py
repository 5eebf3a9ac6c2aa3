"""External waits (`type: ExternalTaskSensor`) as external assets in the lineage.

The one place that defines their assets. The `ml_pipelines_waits` sensor (ml_pipelines/waits)
records their events: an observation while a partition waits, a runless materialization when
the wait is satisfied, a failed-to-materialize event when it times out; it launches the steps
after a wait. The pipeline's schedule leaves those steps out of its run (`factory/__init__.py`).
"""

from __future__ import annotations

from dagster import AssetDep, AssetKey, AssetSpec, PartitionsDefinition

from ml_pipelines.config.loader import LoadedPipeline
from ml_pipelines.config.schema import ExternalWaitStep
from ml_pipelines.config.waits import AIRFLOW, DAGSTER, THIS, UNKNOWN, airflow_url_set, wait_source
from ml_pipelines.steps.registry import REGISTRY

EXTERNAL_PIPELINE_STEP = "__pipeline__"  # asset name standing for a whole awaited pipeline


def awaited_keys(step: ExternalWaitStep, pipeline_sinks: dict[str, list[AssetKey]]) -> list[AssetKey]:
    """The awaited step's key; for a whole pipeline, its last steps when it is loaded here."""
    details = step.external_dag_details
    if details.source == DAGSTER and details.asset_keys:
        return [AssetKey.from_user_string(k) for k in details.asset_keys]
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
    source = source_text(step, set(pipeline_sinks))
    return AssetSpec(
        key=AssetKey([pipeline.config.pipeline_id, step.name]),
        deps=[*deps, *(AssetDep(k) for k in awaited_keys(step, pipeline_sinks))],
        group_name=pipeline.config.pipeline_id,
        owners=owners,
        kinds=set(REGISTRY[step.kind].dagster_kinds),
        partitions_def=partitions_def,
        description=(
            f"Waits for {target} (states: {', '.join(details.allowed_states)}; "
            f"offset {details.execution_delta}; source: {source}). Not materialized here: the ml_pipelines_waits "
            "sensor opens it at each tick of the pipeline's schedule, records it (observations while waiting, a "
            "materialization when satisfied, a failure at timeout) and then launches the steps after it."
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
            "source": source,
        },
    )


def source_text(step: ExternalWaitStep, pipeline_ids: set[str]) -> str:
    """Where the awaited pipeline runs, for the UI (an Airflow without settings says so)."""
    details = step.external_dag_details
    configured = airflow_url_set()
    source = wait_source(details, pipeline_ids, configured)
    if source == AIRFLOW and not configured:
        return "airflow (not configured: ML_PIPELINES_AIRFLOW_URL is not set; never satisfied)"
    return {
        THIS: "this code location",
        DAGSTER: "another code location of this Dagster instance",
        AIRFLOW: "airflow",
        UNKNOWN: f"unknown ({details.external_dag_id} is not a pipeline here and no Airflow is configured)",
    }[source]
