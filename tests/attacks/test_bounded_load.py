"""Issue 10, items 7 and 2 (variables.yml): a small hostile input never makes the load
unbounded, and a broken variables.yml is a located error, never a crash."""

from __future__ import annotations

import io
import shutil
import time
import tracemalloc
from pathlib import Path

import pytest
from dagster import AssetKey

from ml_pipelines.cli import main
from ml_pipelines.config.loader import MAX_ERRORS_PER_FILE, load_project
from ml_pipelines.config.paths import MAX_TREE_ENTRIES
from ml_pipelines.config.variables import VariablesError, load_variables
from ml_pipelines.config.yaml_loader import load_yaml
from ml_pipelines.factory.broken import BROKEN_GROUP
from tests.factory.conftest import PROJECT_OK, build_defs

# 9 levels of 9 aliases: 9**9 strings once expanded, 342 bytes on disk.
ALIAS_BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{cur}: &{cur} [{','.join(['*' + prev] * 9)}]\n" for prev, cur in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(PROJECT_OK, root)
    return root


def _bounded(call, memory: bool = True, seconds: float = 2.0):
    """call()'s result, asserting it took < `seconds` and (`memory`) < 64 MiB of Python
    allocations; tracemalloc slows the call, so a whole project load goes without it (and
    with more time: the fixture project's load alone takes 1-3 s on a busy machine)."""
    if memory:
        tracemalloc.start()
    start = time.perf_counter()
    try:
        result = call()
    finally:
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < seconds, elapsed
    assert peak < 64 * 1024 * 1024, peak
    return result


def _validate(project: Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["validate", "--project-dir", str(project), "--env", "LOCAL"], out=out, err=err)
    return code, out.getvalue() + err.getvalue()


def _variables_error(project: Path, text: str) -> VariablesError:
    (project / "model_configs" / "variables.yml").write_text(text)
    with pytest.raises(VariablesError) as info:
        _bounded(lambda: load_variables(project / "model_configs", "LOCAL", environ={}))
    return info.value


def test_alias_bomb_in_variables(project: Path, tmp_path: Path) -> None:
    error = _variables_error(project, "COMMON:\n  " + ALIAS_BOMB.replace("\n", "\n  "))
    assert error.line is not None and "alias bomb" in error.detail
    loaded = _bounded(lambda: load_project(project, "LOCAL"), memory=False, seconds=10)
    assert any("variables.yml" in str(e) and "alias bomb" in str(e) for e in loaded.errors)
    keys = set(build_defs(project, tmp_path / "home").resolve_asset_graph().get_all_asset_keys())
    assert AssetKey([BROKEN_GROUP, "model_configs_variables_yml"]) in keys


def test_alias_bomb_in_a_config(project: Path) -> None:
    bomb = project / "model_configs" / "bomb.yml"
    bomb.write_text(ALIAS_BOMB)
    doc = _bounded(lambda: load_yaml(bomb, root=project))
    assert doc.fatal and "alias bomb" in doc.issues[0].message
    loaded = _bounded(lambda: load_project(project, "LOCAL"), memory=False, seconds=10)
    errors = [str(e) for e in loaded.errors if "bomb.yml" in str(e)]
    assert len(errors) == 1 and "alias bomb" in errors[0], errors
    assert "demo_dap_testing" in loaded.pipeline_ids


def test_variables_unknown_section(project: Path) -> None:
    error = _variables_error(project, "COMMON:\n  A: 1\nSTAGING:\n  A: 2\n")
    assert error.line == 3 and "unknown section 'STAGING'" in error.detail


def test_variables_deep_nesting(project: Path, tmp_path: Path) -> None:
    deep = "COMMON:\n  X: " + "[" * 200 + "]" * 200 + "\n"
    error = _variables_error(project, deep)
    assert error.line == 2 and "nested deeper than" in error.detail
    code, text = _validate(project)
    assert code == 1 and "model_configs/variables.yml:2:" in text, text


def test_variables_section_that_is_not_a_mapping(project: Path) -> None:
    error = _variables_error(project, "COMMON:\n  A: 1\nDEV: [1, 2]\n")
    assert error.line == 3 and "DEV: expected a mapping" in error.detail


def test_variables_include_is_refused(project: Path) -> None:
    error = _variables_error(project, "COMMON:\n  A: !include forecast_daily.yml\n")
    assert error.line == 2 and "!include is not allowed" in error.detail


def test_lib_with_too_many_files(project: Path) -> None:
    big = project / "Sagemaker_Models" / "Forecast" / "lib" / "vendored"
    big.mkdir()
    for i in range(MAX_TREE_ENTRIES + 1):
        (big / f"m{i}.py").touch()
    loaded = _bounded(lambda: load_project(project, "LOCAL"), memory=False, seconds=10)
    text = "\n".join(str(e) for e in loaded.errors)
    assert f"Sagemaker_Models/Forecast/lib holds more than {MAX_TREE_ENTRIES} files" in text, text
    assert "demo_forecast_Daily" not in loaded.pipeline_ids and "demo_dap_testing" in loaded.pipeline_ids


def test_many_included_errors_are_capped(project: Path, tmp_path: Path) -> None:
    common = project / "model_configs" / "common"
    bad = "".join(f"k{i}: !!python/name:os.system x\n" for i in range(300))
    for n in range(20):
        (common / f"bad{n}.yml").write_text(bad)
    config = project / "model_configs" / "dap_testing.yaml"
    includes = "".join(f"  part{n}: !include common/bad{n}.yml\n" for n in range(20))
    config.write_text(
        config.read_text().replace(
            "CommonConf: !include common/snowflake_common_config.yml\n", "CommonConf:\n" + includes
        )
    )
    loaded = load_project(project, "LOCAL")
    errors = loaded.broken[config]
    assert len(errors) == MAX_ERRORS_PER_FILE + 1
    assert str(errors[-1]).endswith(
        f"and {20 * 300 - MAX_ERRORS_PER_FILE} more errors in this file (the first 50 are shown)"
    )
    code, text = _validate(project)
    assert code == 1 and len(text.splitlines()) < MAX_ERRORS_PER_FILE + 10
    defs = build_defs(project, tmp_path / "home")
    key = AssetKey([BROKEN_GROUP, "model_configs_dap_testing_yaml"])
    assert len(defs.get_assets_def(key).specs_by_key[key].description or "") < 30_000
