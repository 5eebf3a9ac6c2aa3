"""Airflow's task states, read from Dagster's event log for an awaited asset partition.

Explicit mapping (what `allowed_states` compares with):

| Airflow state     | Dagster, for the awaited asset and partition                                      |
|-------------------|-----------------------------------------------------------------------------------|
| `success`         | materialized (the latest attempt ended with a materialization)                    |
| `failed`          | the latest attempt's run ended (failure, cancel) after the step started and failed |
| `running`         | the latest attempt's run is in progress (started)                                  |
| `queued`          | the latest attempt's run is queued or starting (never in `allowed_states`)         |
| `upstream_failed` | the latest attempt's run failed before the step started (never in `allowed_states`) |
| `skipped`         | the latest attempt's run succeeded without materializing it, e.g. the step was not  |
|                   | reached (never in `allowed_states`)                                                |
| none (no run yet) | never attempted                                                                     |

The old format allows only `success`, `running` and `failed` in `allowed_states`, so
`queued`, `skipped` and `upstream_failed` never satisfy a wait: it waits on, as Airflow's
ExternalTaskSensor does for a state that is neither allowed nor failed, until its timeout.

For a whole pipeline (`external_task_id: None`) the state of its last steps is combined as
Airflow's DAG run state is: `failed` when any failed (or upstream_failed), `success` when all
succeeded (or were skipped), none when none was attempted, else `running`.
"""

from __future__ import annotations

from collections.abc import Iterable

from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus

SUCCESS, FAILED, RUNNING = "success", "failed", "running"
QUEUED, SKIPPED, UPSTREAM_FAILED = "queued", "skipped", "upstream_failed"
WAITING_RUN_STATUSES = {DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING}
STEP_STARTED = {DagsterEventType.STEP_START, DagsterEventType.STEP_FAILURE, DagsterEventType.STEP_UP_FOR_RETRY}


def asset_state(
    instance: DagsterInstance, key: AssetKey, partition: str | None, op_name: str | None = None
) -> str | None:
    """The Airflow state of `key`'s `partition` (None: an unpartitioned asset), or None when it
    was never attempted. `op_name`: the op that materializes it, when known (this code location),
    to tell `failed` from `upstream_failed`; without it a failed run counts as `failed`."""
    if partition is None:
        return _unpartitioned_state(instance, key, op_name)
    materialized = instance.get_latest_storage_id_by_partition(
        key, DagsterEventType.ASSET_MATERIALIZATION, partitions={partition}
    ).get(partition)
    planned = instance.get_latest_storage_id_by_partition(
        key, DagsterEventType.ASSET_MATERIALIZATION_PLANNED, partitions={partition}
    ).get(partition)
    if materialized is not None and (planned is None or materialized > planned):
        return SUCCESS
    if planned is None:
        return None
    info = instance.get_latest_planned_materialization_info(key, partition)
    if info is None:  # wiped meanwhile
        return None
    return _attempt_state(instance, key, partition, info.run_id, op_name)


def _unpartitioned_state(instance: DagsterInstance, key: AssetKey, op_name: str | None) -> str | None:
    records = instance.get_asset_records([key])
    if not records:
        return None
    entry = records[0].asset_entry
    materialized = entry.last_materialization_storage_id
    planned = entry.last_planned_materialization_storage_id
    if materialized is not None and (planned is None or materialized > planned):
        return SUCCESS
    if planned is None or entry.last_planned_materialization_run_id is None:
        return None
    return _attempt_state(instance, key, None, entry.last_planned_materialization_run_id, op_name)


def _attempt_state(
    instance: DagsterInstance, key: AssetKey, partition: str | None, run_id: str, op_name: str | None
) -> str | None:
    record = instance.get_run_record_by_id(run_id)
    if record is None:  # the run was deleted
        return None
    run = record.dagster_run
    if run.status in WAITING_RUN_STATUSES:
        return QUEUED
    if not run.is_finished:
        return RUNNING
    # The run is over: the materialization may have landed after the planned event was read.
    if partition is not None:
        latest = instance.get_latest_storage_id_by_partition(
            key, DagsterEventType.ASSET_MATERIALIZATION, partitions={partition}
        ).get(partition)
        planned = instance.get_latest_storage_id_by_partition(
            key, DagsterEventType.ASSET_MATERIALIZATION_PLANNED, partitions={partition}
        ).get(partition)
        if latest is not None and planned is not None and latest > planned:
            return SUCCESS
    if run.status == DagsterRunStatus.SUCCESS:
        return SKIPPED
    if op_name is None:
        return FAILED
    started = {
        r.event_log_entry.step_key
        for r in instance.get_records_for_run(run_id, of_type=STEP_STARTED).records
        if r.event_log_entry.step_key
    }
    return FAILED if op_name in started else UPSTREAM_FAILED


def combined_state(states: Iterable[str | None]) -> str | None:
    """A whole pipeline's state from its last steps' states, as Airflow's DAG run state."""
    states = list(states)
    if not states or all(s is None for s in states):
        return None
    if any(s in (FAILED, UPSTREAM_FAILED) for s in states):
        return FAILED
    if all(s in (SUCCESS, SKIPPED) for s in states):
        return SUCCESS
    return RUNNING


def describe_state(state: str | None) -> str:
    return "no run yet" if state is None else state
