"""The shipped code location loads and shows each example pipeline as a connected graph."""

from __future__ import annotations

from dagster import AssetKey, Definitions

from tests.factory.conftest import REPO, build_defs


def test_shipped_project_loads_with_lineage_groups_kinds_owners(tmp_path):
    defs = build_defs(REPO, tmp_path / "home", strict=True)
    Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {key for key in graph.get_all_asset_keys()}

    forecast = "max_ds_ContentForecastDaily"
    features = "max_ds_ViewershipFeatures"
    expected = {
        AssetKey([features, "python_script_land_raw_events"]),
        AssetKey([features, "glue_job_processing_script"]),
        AssetKey([forecast, "external_task_dag_status"]),
        AssetKey([forecast, "ecr_container_creation"]),
        AssetKey([forecast, "sagemaker_notebook_job_processing_script"]),
        AssetKey([forecast, "sagemaker_notebook_job_processing_script_v2"]),
        AssetKey([forecast, "write_to_snowflake"]),
    }
    assert expected <= keys

    notebook = graph.get(AssetKey([forecast, "sagemaker_notebook_job_processing_script"]))
    assert set(notebook.parent_keys) == {
        AssetKey([forecast, "ecr_container_creation"]),
        AssetKey([forecast, "external_task_dag_status"]),
    }
    # the external wait links the two pipelines
    wait = graph.get(AssetKey([forecast, "external_task_dag_status"]))
    assert AssetKey([features, "glue_job_processing_script"]) in wait.parent_keys
    assert not wait.is_materializable
    assert graph.get(AssetKey([forecast, "write_to_snowflake"])).parent_keys == {
        AssetKey([forecast, "sagemaker_notebook_job_processing_script"])
    }

    # the image is one unpartitioned asset; the steps that work on a date are partitioned
    assert graph.get(AssetKey([forecast, "ecr_container_creation"])).partitions_def is None
    assert notebook.partitions_def is not None and wait.partitions_def == notebook.partitions_def

    assert notebook.group_name == forecast
    assert {"sagemaker", "jupyter"} <= set(notebook.kinds)
    assert {"snowflake", "sql"} <= set(graph.get(AssetKey([forecast, "write_to_snowflake"])).kinds)
    assert {"spark"} <= set(graph.get(AssetKey([features, "glue_job_processing_script"])).kinds)
    assert all(o.startswith("team:") or "@" in o for o in notebook.owners) and notebook.owners
    # description carries the notebook's first markdown cell
    assert "Content" in (notebook.description or "")
    assert notebook.code_version and len(notebook.code_version) >= 8

    sql = defs.get_assets_def(AssetKey([forecast, "write_to_snowflake"]))
    tables = sql.specs_by_key[AssetKey([forecast, "write_to_snowflake"])].metadata["tables_written"]
    assert tables

    schedules = {s.name: s for s in defs.schedules}
    assert {f"{forecast}_schedule", f"{features}_schedule"} <= set(schedules)
    assert schedules[f"{forecast}_schedule"].job_name == forecast
