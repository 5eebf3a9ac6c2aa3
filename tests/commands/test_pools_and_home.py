"""The pieces around max_active_runs and the project's instance, without servers."""

from __future__ import annotations

import io

from dagster import instance_for_test

from ml_pipelines.dagster_home import ensure_dagster_home, instance_config_text, warn_if_temporary_instance
from ml_pipelines.factory.pools import sync_pool_limits
from tests.commands.conftest import command_env, ml_pipelines, write_commands_project


def test_sync_sets_changes_and_removes_only_our_pools():
    with instance_for_test() as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots("someone_elses_pool", 3)
        assert sync_pool_limits(instance, {"ml_pipelines/a": 1, "ml_pipelines/b": 2}) == [
            "ml_pipelines/a: none -> 1",
            "ml_pipelines/b: none -> 2",
        ]
        assert sync_pool_limits(instance, {"ml_pipelines/a": 1, "ml_pipelines/b": 2}) == []  # one read, no write
        changes = sync_pool_limits(instance, {"ml_pipelines/a": 3})
        assert changes == ["ml_pipelines/a: 1 -> 3", "ml_pipelines/b: 2 -> removed (no max_active_runs)"]
        limits = {p.name: p.limit for p in storage.get_pool_limits()}
        assert limits == {"ml_pipelines/a": 3, "someone_elses_pool": 3}


def test_the_projects_instance_folder_gets_the_products_config(tmp_path):
    home = ensure_dagster_home(tmp_path / "dagster_home")
    assert (home / "dagster.yaml").read_text() == instance_config_text()
    (home / "dagster.yaml").write_text("stale: true\n")
    ensure_dagster_home(home)
    assert (home / "dagster.yaml").read_text() == instance_config_text()

    project = write_commands_project(tmp_path)
    done = ml_pipelines(["dagster-home"], command_env(project, tmp_path), project, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "home" / "dagster_home")  # <ML_PIPELINES_HOME>/dagster_home


def test_dagster_asset_materialize_without_dagster_home_warns():
    err = io.StringIO()
    argv = ["/venv/bin/dagster", "asset", "materialize", "-m", "ml_pipelines.definitions", "--select", "x"]
    assert warn_if_temporary_instance(argv, environ={}, err=err)
    assert "DAGSTER_HOME is not set" in err.getvalue() and "ml-pipelines run" in err.getvalue()
    assert not warn_if_temporary_instance(argv, environ={"DAGSTER_HOME": "/h"}, err=io.StringIO())
    # loading the code location elsewhere (webserver, code server, validate) says nothing
    for other in (["/venv/bin/dagster", "definitions", "validate"], ["/venv/bin/dagster-webserver"], ["-c"]):
        assert not warn_if_temporary_instance(other, environ={}, err=io.StringIO())
    assert warn_if_temporary_instance(["/venv/bin/dg", "launch", "--assets", "x"], environ={}, err=io.StringIO())
