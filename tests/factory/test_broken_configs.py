"""A config that fails validation never takes the other pipelines down with it."""

from __future__ import annotations

import pytest
from dagster import AssetKey, materialize

from ml_pipelines.factory import BrokenConfigs
from ml_pipelines.factory.broken import BROKEN_GROUP
from tests.factory.conftest import build_defs


def _break_forecast(project):
    path = project / "model_configs" / "forecast_daily.yml"
    text = path.read_text()
    assert 'kernel: "python3"' in text
    path.write_text(text.replace('kernel: "python3"', 'kernel: "python9"', 1))
    line = next(i for i, l in enumerate(path.read_text().splitlines(), 1) if "python9" in l)
    return line


def test_broken_file_becomes_a_failing_asset_and_others_load(project_copy, tmp_path, instance):
    line = _break_forecast(project_copy)
    defs = build_defs(project_copy, tmp_path / "home")
    graph = defs.resolve_asset_graph()
    keys = set(graph.get_all_asset_keys())

    assert AssetKey(["demo_dap_testing", "write_to_snowflake_movies"]) in keys  # the other file's pipeline
    # only the awaited key of dap_testing's external wait remains, as a non-materializable stub
    assert not any(k.path[0] == "demo_forecast_Daily" and graph.get(k).is_materializable for k in keys)

    broken_key = AssetKey([BROKEN_GROUP, "model_configs_forecast_daily_yml"])
    broken = defs.get_assets_def(broken_key)
    description = broken.specs_by_key[broken_key].description
    assert f"model_configs/forecast_daily.yml:{line}:" in description
    assert "kernel" in description and "python3" in description  # what would be right

    result = materialize([broken], instance=instance, raise_on_error=False)
    assert not result.success
    checks = [e for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert checks and checks[0].event_specific_data.passed is False


def test_strict_mode_fails_the_load(project_copy, tmp_path):
    _break_forecast(project_copy)
    with pytest.raises(BrokenConfigs, match="forecast_daily.yml"):
        build_defs(project_copy, tmp_path / "home", strict=True)


def test_strict_mode_through_the_environment(project_copy, tmp_path, monkeypatch):
    """definitions.py reads ML_PIPELINES_STRICT; the load fails with the config errors."""
    import importlib
    import sys

    _break_forecast(project_copy)
    monkeypatch.setenv("ML_PIPELINES_PROJECT_DIR", str(project_copy))
    monkeypatch.setenv("ML_PIPELINES_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ML_PIPELINES_STRICT", "1")
    sys.modules.pop("ml_pipelines.definitions", None)
    with pytest.raises(BrokenConfigs):
        importlib.import_module("ml_pipelines.definitions")
    monkeypatch.setenv("ML_PIPELINES_STRICT", "0")
    sys.modules.pop("ml_pipelines.definitions", None)
    module = importlib.import_module("ml_pipelines.definitions")
    assert module.defs.get_assets_def(AssetKey(["demo_dap_testing", "write_to_snowflake_movies"]))
    sys.modules.pop("ml_pipelines.definitions", None)


def test_a_broken_variables_file_is_a_failing_asset_and_the_pipelines_load(project_copy, tmp_path):
    (project_copy / "model_configs" / "variables.yml").write_text("COMMON:\n  CI_STAGING: [unclosed\n")
    defs = build_defs(project_copy, tmp_path / "home")
    keys = set(defs.resolve_asset_graph().get_all_asset_keys())
    assert AssetKey([BROKEN_GROUP, "model_configs_variables_yml"]) in keys
    assert AssetKey(["demo_dap_testing", "write_to_snowflake_movies"]) in keys


def test_broken_config_names_are_unique_per_file(tmp_path):
    from ml_pipelines.factory.broken import broken_config_names

    configs = tmp_path / "model_configs"
    files = [configs / "team-a.yml", configs / "team_a.yml", configs / "team a.yml", configs / "other.yml"]
    names = broken_config_names(files, tmp_path)
    assert names[configs / "other.yml"] == "model_configs_other_yml"  # no collision: the plain name
    colliding = [names[f] for f in files[:3]]
    assert len(set(colliding)) == 3 and all(n.startswith("model_configs_team_a_yml_") for n in colliding)
    assert broken_config_names(list(reversed(files)), tmp_path) == names  # deterministic
