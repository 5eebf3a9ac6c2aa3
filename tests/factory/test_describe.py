"""What the UI shows about a step's owners."""

from __future__ import annotations

from dagster import AssetSpec

from ml_pipelines.factory.describe import owners_of


def test_owners_of_team_names_and_address_lists() -> None:
    assert owners_of("") == []
    assert owners_of("DAP OPS") == ["team:DAP_OPS"]
    assert owners_of("a@example.com") == ["a@example.com"]
    assert owners_of("a@example.com, b@example.org; a@example.com") == ["a@example.com", "b@example.org"]
    # a valid address Dagster's narrower check refuses (a long top-level domain) becomes a team name
    owners = owners_of("ds@example.photography")
    assert owners == ["team:ds_example_photography"]
    AssetSpec("x", owners=owners)  # Dagster accepts every owner we give it


def test_deeply_nested_sql_and_notebooks_give_nothing_rather_than_fail(tmp_path) -> None:
    from ml_pipelines.factory.describe import notebook_summary, tables_written

    sql = tmp_path / "deep.sql"
    sql.write_text("INSERT INTO t SELECT " + "(" * 300 + "1" + ")" * 300 + ";\n")
    assert tables_written((sql,)) == []
    notebook = tmp_path / "deep.ipynb"
    notebook.write_text('{"cells": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert notebook_summary(notebook) is None
    notebook.write_text("[1, 2]")
    assert notebook_summary(notebook) is None
