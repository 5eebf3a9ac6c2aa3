"""Waits on assets of another code location of the same Dagster instance, by asset key: the
other location's assets are materialized into the same instance from their own Definitions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from dagster import AssetKey, DailyPartitionsDefinition, Definitions, asset, materialize

from tests.waits.conftest import DOWN, PARTITION, TICK, WAIT_KEY, Waits, details, location, write_project

DAILY = DailyPartitionsDefinition(start_date="2023-12-01")  # midnight to midnight, keys like 2024-01-04


@asset(key=["other_team_Daily", "daily_table"], partitions_def=DAILY)
def daily_table() -> None:
    """An asset of another code location."""


@asset(key=["other_team", "extra_table"], partitions_def=DAILY)
def extra_table() -> None:
    """Another one."""


OTHER_LOCATION = Definitions(assets=[daily_table, extra_table])


def _materialize_elsewhere(instance, asset_def, partition: str) -> None:
    assert materialize([asset_def], instance=instance, partition_key=partition).success


@pytest.fixture(scope="module")
def by_task_id(tmp_path_factory):
    """source: dagster, the key from external_dag_id/external_task_id."""
    root = tmp_path_factory.mktemp("other")
    return location(
        write_project(
            root, details(external_dag_id="other_team_Daily", external_task_id="daily_table", source="dagster")
        )
    )


def test_the_wait_is_satisfied_by_the_other_locations_materialization(by_task_id, instance):
    Definitions.validate_loadable(OTHER_LOCATION)
    graph = by_task_id.resolve_asset_graph()
    assert AssetKey(["other_team_Daily", "daily_table"]) in graph.get(WAIT_KEY).parent_keys  # lineage by key
    waits = Waits(by_task_id, instance)
    waits.start()
    assert waits.materialize(AssetKey([DOWN, "python_script_first"]), PARTITION, tags={"ml_pipelines/pipeline": DOWN})
    data = waits.tick(TICK + timedelta(seconds=10))
    assert "other_team_Daily/daily_table (another code location)" in data.skip_message
    _materialize_elsewhere(instance, daily_table, "2024-01-03")  # another day
    assert not waits.tick(TICK + timedelta(seconds=75)).run_requests
    _materialize_elsewhere(instance, daily_table, PARTITION)
    (request,) = waits.tick(TICK + timedelta(seconds=140)).run_requests
    assert request.partition_key == PARTITION


def test_asset_keys_name_the_awaited_assets_all_of_which_count(tmp_path, instance):
    wait = details(
        external_dag_id="other_team",
        external_task_id="None",
        source="dagster",
        asset_keys='["other_team_Daily/daily_table", "other_team/extra_table"]',
        execution_delta="timedelta(days=1)",
    )
    defs = location(write_project(tmp_path, wait))
    parents = defs.resolve_asset_graph().get(WAIT_KEY).parent_keys
    assert {AssetKey(["other_team_Daily", "daily_table"]), AssetKey(["other_team", "extra_table"])} <= parents
    waits = Waits(defs, instance)
    waits.start()
    assert waits.materialize(AssetKey([DOWN, "python_script_first"]), PARTITION, tags={"ml_pipelines/pipeline": DOWN})
    _materialize_elsewhere(instance, daily_table, "2024-01-03")
    data = waits.tick(TICK + timedelta(seconds=10))
    assert not data.run_requests and "partition 2024-01-03" in data.skip_message
    _materialize_elsewhere(instance, extra_table, "2024-01-03")
    assert waits.tick(TICK + timedelta(seconds=75)).run_requests
