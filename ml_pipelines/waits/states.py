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

from collections.abc import Iterable, Mapping

from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus

SUCCESS, FAILED, RUNNING = "success", "failed", "running"
KEYS_PER_QUERY = 200  # asset keys per batched event-log query
QUEUED, SKIPPED, UPSTREAM_FAILED = "queued", "skipped", "upstream_failed"
WAITING_RUN_STATUSES = {DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING}
STEP_STARTED = {DagsterEventType.STEP_START, DagsterEventType.STEP_FAILURE, DagsterEventType.STEP_UP_FOR_RETRY}


def latest_attempt_ids(
    instance: DagsterInstance, pairs: Iterable[tuple[AssetKey, str]]
) -> dict[tuple[AssetKey, str], tuple[int | None, int | None]]:
    """For each (asset key, partition): the storage ids of its latest materialization and of its
    latest planned materialization (None when there is none), after the asset's last wipe.

    What `get_latest_storage_id_by_partition` answers for one key and event type, for many
    keys and both event types in one grouped query per KEYS_PER_QUERY keys (on SQLite, LOCAL's
    storage, a query per key costs about 5 ms: 1,000 waits would cost 10 s a pass)."""
    import sqlalchemy as db
    from dagster._core.storage.event_log.schema import SqlEventLogStorageTable as T  # noqa: N817
    from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
    from dagster._core.storage.sqlalchemy_compat import db_fetch_mappings, db_select

    pairs = set(pairs)
    storage = instance.event_log_storage
    if not isinstance(storage, SqlEventLogStorage):  # another storage: its own per-key queries
        return {pair: _ids_one_by_one(instance, *pair) for pair in pairs}
    by_key: dict[AssetKey, set[str]] = {}
    for key, partition in pairs:
        by_key.setdefault(key, set()).add(partition)
    keys = sorted(by_key, key=lambda k: k.to_string())
    types = {DagsterEventType.ASSET_MATERIALIZATION.value: 0, DagsterEventType.ASSET_MATERIALIZATION_PLANNED.value: 1}
    found: dict[tuple[AssetKey, str], list[int | None]] = {pair: [None, None] for pair in pairs}
    for start in range(0, len(keys), KEYS_PER_QUERY):
        chunk = keys[start : start + KEYS_PER_QUERY]
        partitions = sorted(set().union(*(by_key[k] for k in chunk)))
        query = db_select(
            [T.c.asset_key, T.c.partition, T.c.dagster_event_type, db.func.max(T.c.id).label("id")]
        ).where(
            db.and_(
                T.c.asset_key.in_([k.to_string() for k in chunk]),
                T.c.partition.in_(partitions),
                T.c.dagster_event_type.in_(list(types)),
            )
        )
        query = storage._add_assets_wipe_filter_to_query(query, storage._get_assets_details(chunk), chunk)  # noqa: SLF001
        query = query.group_by(T.c.asset_key, T.c.partition, T.c.dagster_event_type)
        with storage.index_connection() as conn:
            rows = db_fetch_mappings(conn, query)
        for row in rows:
            pair = (AssetKey.from_db_string(row["asset_key"]), row["partition"])
            if pair in found:
                found[pair][types[row["dagster_event_type"]]] = row["id"]
    return {pair: (ids[0], ids[1]) for pair, ids in found.items()}


def _ids_one_by_one(instance: DagsterInstance, key: AssetKey, partition: str) -> tuple[int | None, int | None]:
    return tuple(  # type: ignore[return-value]
        instance.get_latest_storage_id_by_partition(key, event_type, partitions={partition}).get(partition)
        for event_type in (DagsterEventType.ASSET_MATERIALIZATION, DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    )


def asset_states(
    instance: DagsterInstance, wanted: Mapping[tuple[AssetKey, str | None], str | None]
) -> dict[tuple[AssetKey, str | None], str | None]:
    """`asset_state` of many (key, partition) pairs (value: the op, when known), the event log
    read in batches; an attempt that did not end in a materialization costs its own queries."""
    partitioned = [pair for pair in wanted if pair[1] is not None]
    ids = latest_attempt_ids(instance, partitioned)  # type: ignore[arg-type]
    states: dict[tuple[AssetKey, str | None], str | None] = {}
    for pair, op_name in wanted.items():
        key, partition = pair
        if partition is None:
            states[pair] = _unpartitioned_state(instance, key, op_name)
            continue
        materialized, planned = ids[(key, partition)]
        if materialized is not None and (planned is None or materialized > planned):
            states[pair] = SUCCESS
        elif planned is None:
            states[pair] = None
        else:
            info = instance.get_latest_planned_materialization_info(key, partition)
            states[pair] = None if info is None else _attempt_state(instance, key, partition, info.run_id, op_name)
    return states


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
