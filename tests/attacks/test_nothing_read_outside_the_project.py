"""Issue 10, item 3: a symlink or an `!include` never makes the load read outside the project.

Each test plants a secret outside the project (or in the LOCAL state of another team),
points the project at it, and checks that `ml-pipelines validate` and `plan` never print
it, that the error names the file and line at fault, and that the code location still
builds the pipelines the attack does not touch.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from dagster import AssetKey

from ml_pipelines.cli import main
from ml_pipelines.factory.broken import BROKEN_GROUP
from tests.factory.conftest import PROJECT_OK, build_defs

SECRET = "TOPSECRET-9f3c1e"
FORECAST_ID = "demo_forecast_Daily"
DAP_ID = "demo_dap_testing"
FORECAST = "model_configs/forecast_daily.yml"
DAP = "model_configs/dap_testing.yaml"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(PROJECT_OK, root)
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the project, every file in it holding SECRET."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def _replace_with_link(path: Path, target: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    path.symlink_to(target, target_is_directory=target.is_dir())


def _copy_out(src: Path, dest: Path) -> Path:
    """Copy the model folder `src` to `dest` (outside), with SECRET in every text file."""
    shutil.copytree(src, dest)
    for file in dest.rglob("*"):
        if file.suffix == ".json":
            data = json.loads(file.read_text())
            if isinstance(data, dict):
                data.setdefault("COMMON", {})["token"] = SECRET
                file.write_text(json.dumps(data))
        elif file.is_file() and file.suffix in (".py", ".sql", ".txt"):
            file.write_text(file.read_text() + f"\n-- {SECRET}\n" if file.suffix == ".sql" else f"# {SECRET}\n")
    return dest


def _cli(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue() + err.getvalue()


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def _check(
    project: Path, tmp_path: Path, *, broken_id: str | None, expect: str, keep_id: str | None, plan_id: str
) -> str:
    """validate and plan never print SECRET; validate prints `expect`; the location builds."""
    code, text = _cli("validate", "--project-dir", str(project))
    assert SECRET not in text
    assert code == 1, text
    assert expect in text, text
    code, plan_text = _cli("plan", plan_id, "--project-dir", str(project), "--date", "2024-01-02")
    assert SECRET not in plan_text
    if broken_id == plan_id:
        assert code == 1 and expect in plan_text, plan_text
    defs = build_defs(project, tmp_path / "home")
    keys = set(defs.resolve_asset_graph().get_all_asset_keys())
    assert any(k.path[0] == BROKEN_GROUP for k in keys)
    if keep_id is not None:
        assert any(k.path[0] == keep_id for k in keys), keys
    for key in keys:
        if key.path[0] == BROKEN_GROUP:
            spec = defs.get_assets_def(key).specs_by_key[key]
            assert SECRET not in (spec.description or "")
    return text


def test_symlinked_common_python_model_folder(project: Path, outside: Path, tmp_path: Path) -> None:
    folder = project / "Py_Models" / "table_checks"
    _replace_with_link(folder, _copy_out(folder, outside / "table_checks"))
    line = _line_of(project / DAP, "script_name: table_checks")
    text = _check(project, tmp_path, broken_id=DAP_ID, expect=f"{DAP}:{line}:", keep_id=FORECAST_ID, plan_id=DAP_ID)
    assert "Py_Models/table_checks is a symlink to" in text and "outside the project" in text


def test_symlinked_common_glue_model_folder(project: Path, outside: Path, tmp_path: Path) -> None:
    folder = project / "Glue_Models" / "common" / "shared_dedupe"
    _replace_with_link(folder, _copy_out(folder, outside / "shared_dedupe"))
    line = _line_of(project / DAP, "script_name: shared_dedupe")
    text = _check(project, tmp_path, broken_id=DAP_ID, expect=f"{DAP}:{line}:", keep_id=FORECAST_ID, plan_id=DAP_ID)
    assert "Glue_Models/common/shared_dedupe is a symlink to" in text


def test_symlinked_top_level_config(project: Path, outside: Path, tmp_path: Path) -> None:
    secret = outside / "passwd"
    secret.write_text(f"{SECRET}: x\nroot: {SECRET}\n")
    (project / "model_configs" / "passwd.yml").symlink_to(secret)
    text = _check(
        project, tmp_path, broken_id=None, expect="model_configs/passwd.yml", keep_id=FORECAST_ID, plan_id=DAP_ID
    )
    assert "is a symlink to" in text and "outside the project" in text
    # named where it is (in the project), not where it leads
    assert any(line.startswith("model_configs/passwd.yml: ") for line in text.splitlines()), text


def test_symlinked_lib_folder(project: Path, outside: Path, tmp_path: Path) -> None:
    lib = project / "Sagemaker_Models" / "Forecast" / "lib"
    _replace_with_link(lib, _copy_out(lib, outside / "lib"))
    line = _line_of(project / FORECAST, 'model_name: "Forecast"')
    text = _check(
        project, tmp_path, broken_id=FORECAST_ID, expect=f"{FORECAST}:{line}:", keep_id=DAP_ID, plan_id=FORECAST_ID
    )
    assert "Sagemaker_Models/Forecast/lib is a symlink to" in text


def test_symlink_inside_lib_leading_out(project: Path, outside: Path, tmp_path: Path) -> None:
    (outside / "secret.py").write_text(f"TOKEN = {SECRET!r}\n")
    (project / "Sagemaker_Models" / "Forecast" / "lib" / "vendored").symlink_to(outside, target_is_directory=True)
    line = _line_of(project / FORECAST, 'model_name: "Forecast"')
    text = _check(
        project, tmp_path, broken_id=FORECAST_ID, expect=f"{FORECAST}:{line}:", keep_id=DAP_ID, plan_id=FORECAST_ID
    )
    assert "Sagemaker_Models/Forecast/lib/vendored is a symlink to" in text


def test_symlinked_sql_folder(project: Path, outside: Path, tmp_path: Path) -> None:
    folder = project / "Sagemaker_Models" / "Forecast" / "pipeline"
    _replace_with_link(folder, _copy_out(folder, outside / "pipeline"))
    line = _line_of(project / FORECAST, '- "sample.sql"')
    text = _check(
        project, tmp_path, broken_id=FORECAST_ID, expect=f"{FORECAST}:{line}:", keep_id=DAP_ID, plan_id=FORECAST_ID
    )
    assert "Sagemaker_Models/Forecast/pipeline is a symlink to" in text


def test_symlinked_python_scripts_folder(project: Path, outside: Path, tmp_path: Path) -> None:
    folder = project / "Glue_Models" / "movies" / "python_scripts"
    _replace_with_link(folder, _copy_out(folder, outside / "python_scripts"))
    line = _line_of(project / FORECAST, 'script_name: "data_validation_v1"')
    text = _check(
        project, tmp_path, broken_id=FORECAST_ID, expect=f"{FORECAST}:{line}:", keep_id=DAP_ID, plan_id=FORECAST_ID
    )
    assert "Glue_Models/movies/python_scripts is a symlink to" in text


def test_symlinked_jars_folder(project: Path, outside: Path, tmp_path: Path) -> None:
    (outside / "jars").mkdir()
    (outside / "jars" / "secret.jar").write_text(SECRET)
    (project / "Glue_Models" / "movies" / "jars").symlink_to(outside / "jars", target_is_directory=True)
    line = _line_of(project / FORECAST, 'glue_model_name: "movies"')
    text = _check(
        project, tmp_path, broken_id=FORECAST_ID, expect=f"{FORECAST}:{line}:", keep_id=DAP_ID, plan_id=FORECAST_ID
    )
    assert "Glue_Models/movies/jars is a symlink to" in text


def test_symlink_that_stays_inside_is_fine(project: Path, tmp_path: Path) -> None:
    shared = project / "shared_sql"
    shutil.move(project / "Sagemaker_Models" / "Forecast" / "pipeline", shared)
    (project / "Sagemaker_Models" / "Forecast" / "pipeline").symlink_to(shared, target_is_directory=True)
    code, text = _cli("validate", "--project-dir", str(project))
    assert code == 0, text


def test_symlink_loop_is_an_error_not_a_hang(project: Path, tmp_path: Path) -> None:
    lib = project / "Sagemaker_Models" / "Forecast" / "lib"
    (lib / "again").symlink_to(lib, target_is_directory=True)
    code, text = _cli("validate", "--project-dir", str(project))
    assert code == 1
    assert "Sagemaker_Models/Forecast/lib/again" in text and "loop" in text, text


@pytest.mark.parametrize("where", ["storage", "elsewhere"])
def test_include_outside_model_configs(project: Path, tmp_path: Path, where: str) -> None:
    if where == "storage":  # another team's LOCAL data, inside the project folder
        secret = project / ".ml_pipelines" / "storage" / "other-team-bucket" / "data.yml"
        target = "../.ml_pipelines/storage/other-team-bucket/data.yml"
    else:
        secret = tmp_path / "elsewhere.yml"
        target = "../../elsewhere.yml"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text(f"{SECRET}: {SECRET}\nsnowflake_conn_id: {SECRET}\n")
    config = project / DAP
    config.write_text(config.read_text().replace("!include common/snowflake_common_config.yml", f"!include {target}"))
    line = _line_of(config, "!include")
    text = _check(project, tmp_path, broken_id=DAP_ID, expect=f"{DAP}:{line}:", keep_id=FORECAST_ID, plan_id=DAP_ID)
    assert "outside model_configs/" in text


def test_include_through_a_symlink_leaving_model_configs(project: Path, outside: Path, tmp_path: Path) -> None:
    (outside / "common.yml").write_text(f"{SECRET}: 1\n")
    (project / "model_configs" / "common" / "evil.yml").symlink_to(outside / "common.yml")
    config = project / DAP
    config.write_text(config.read_text().replace("snowflake_common_config.yml", "evil.yml"))
    line = _line_of(config, "!include")
    _check(project, tmp_path, broken_id=DAP_ID, expect=f"{DAP}:{line}:", keep_id=FORECAST_ID, plan_id=DAP_ID)


def test_variables_file_symlinked_outside(project: Path, outside: Path, tmp_path: Path) -> None:
    (outside / "vars.yml").write_text(f"COMMON:\n  CI_STAGING: {SECRET}\n")
    variables = project / "model_configs" / "variables.yml"
    variables.unlink()
    variables.symlink_to(outside / "vars.yml")
    code, text = _cli("validate", "--project-dir", str(project))
    assert code == 1 and SECRET not in text
    assert "model_configs/variables.yml" in text and "outside the project" in text, text
    assert AssetKey([BROKEN_GROUP, "model_configs_variables_yml"]) in set(
        build_defs(project, tmp_path / "home").resolve_asset_graph().get_all_asset_keys()
    )
