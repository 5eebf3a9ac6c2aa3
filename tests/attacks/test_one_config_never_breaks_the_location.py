"""Issue 10, item 2: one config that `validate` passed (or that only fails while the
factory builds it) took the whole code location down, strict mode off.

Each test builds a project with one good pipeline (tests/factory/tiny_project.py) and one
bad config, loads the code location as every Dagster process does (definitions.py builds
the repository and the implicit asset job too), and checks that the good pipeline is
there and the bad config is a broken-config asset naming the problem; where the problem is
the config's, `ml-pipelines validate` reports it at file:line.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from dagster import AssetKey

from ml_pipelines import cli
from ml_pipelines.factory import BrokenConfigs
from ml_pipelines.factory import assets as factory_assets
from ml_pipelines.factory.broken import BROKEN_GROUP
from tests.factory.conftest import build_defs
from tests.factory.tiny_project import PIPELINE_ID, write_tiny_project

GOOD = AssetKey([PIPELINE_ID, "python_script_echo"])
BAD_ID = "bad_x_Daily"
BROKEN = AssetKey([BROKEN_GROUP, "model_configs_bad_yml"])

BAD = """\
dags:
  sagemaker:
    domain: bad
    sub_domain: x
    action: Daily
    default_args:
      start_date: "{start}"
    schedule_interval: "{cron}"
    model_name: M
    tasks:
{tasks}"""


def script_step(name: str, script: str = "echo") -> str:
    return f"      - name: {name}\n        script_loc: common\n        script_name: {script}\n"


def write_project(root: Path, tasks: str, *, cron: str = "0 6 * * *", start: str = "2024-1-1") -> Path:
    write_tiny_project(root)
    (root / "Sagemaker_Models" / "M" / "pipeline").mkdir(parents=True)
    (root / "model_configs" / "bad.yml").write_text(BAD.format(start=start, cron=cron, tasks=tasks))
    return root


def load_location(root: Path, home: Path, **kwargs):
    """The code location as definitions.py builds it: Definitions, repository, asset job."""
    defs = build_defs(root, home, **kwargs)
    defs.get_repository_def().get_implicit_global_asset_job_def()
    return defs


def asset_keys(defs) -> set[AssetKey]:
    return set(defs.resolve_asset_graph().get_all_asset_keys())


def broken_description(defs, key: AssetKey = BROKEN) -> str:
    return defs.get_assets_def(key).specs_by_key[key].description


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def validate(root: Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["--project-dir", str(root), "validate", "--env", "LOCAL"], out=out, err=err)
    return code, out.getvalue()


# -- nested SQL: the table parser recursed (factory/describe.py) -------------------------------
def test_sql_with_50_nested_parentheses(tmp_path):
    root = write_project(tmp_path / "p", "      - name: write_to_snowflake_x\n        sql_file_names: [deep.sql]\n")
    deep = "INSERT INTO deep_table SELECT " + "(" * 50 + "1" + ")" * 50 + ";\n"
    (root / "Sagemaker_Models" / "M" / "pipeline" / "deep.sql").write_text(deep)
    defs = load_location(root, tmp_path / "home")
    keys = asset_keys(defs)
    assert GOOD in keys
    # the step loads; the UI just lacks the list of tables the file writes
    sql_key = AssetKey([BAD_ID, "write_to_snowflake_x"])
    assert sql_key in keys
    assert BROKEN not in keys


# -- a deeply nested notebook under lib/: the digest recursed (plan/versions.py) --------------
def test_deeply_nested_notebook_under_lib(tmp_path):
    root = write_project(tmp_path / "p", script_step("python_script_deep", "deep"))
    (root / "Py_Models" / "deep.py").write_text("print('deep')\n")
    (root / "Py_Models" / "deep" / "lib").mkdir(parents=True)
    (root / "Py_Models" / "deep" / "lib" / "deep.ipynb").write_text("[" * 100_000 + "]" * 100_000)
    defs = load_location(root, tmp_path / "home")
    keys = asset_keys(defs)
    assert GOOD in keys
    # Whether the digest copes (plan/versions.py) or not, this config alone is affected.
    if AssetKey([BAD_ID, "python_script_deep"]) not in keys:
        text = broken_description(defs)
        assert "model_configs/bad.yml:2: dags.sagemaker: internal error while building pipeline bad_x_Daily" in text
        assert "RecursionError" in text


# -- a symlink loop under lib/: OSError 40 from the digest's walk ------------------------------
def test_symlink_loop_under_lib(tmp_path):
    root = write_project(tmp_path / "p", script_step("python_script_loop", "loop"))
    (root / "Py_Models" / "loop.py").write_text("print('loop')\n")
    (root / "Py_Models" / "loop" / "lib").mkdir(parents=True)
    os.symlink(".", root / "Py_Models" / "loop" / "lib" / "loop")
    defs = load_location(root, tmp_path / "home")
    keys = asset_keys(defs)
    assert GOOD in keys
    # Confining paths (config/paths.py) may make this a config error of the load instead.
    if AssetKey([BAD_ID, "python_script_loop"]) not in keys:
        text = broken_description(defs)
        assert "model_configs/bad.yml:" in text
        assert "symbolic link" in text or "symlink" in text or "loop" in text


# -- the guard itself, with the failure forced (whatever the fixes of the functions above) ------
@pytest.mark.parametrize(
    "error",
    [RecursionError("maximum recursion depth exceeded"), OSError(40, "Too many levels of symbolic links")],
    ids=["RecursionError", "OSError"],
)
def test_a_pipeline_that_fails_to_build_is_its_files_broken_asset(tmp_path, monkeypatch, error):
    root = write_project(tmp_path / "p", script_step("python_script_one") + script_step("python_script_two"))
    real = factory_assets.step_code_version

    def failing(pipeline, name, *args, **kwargs):
        if pipeline.pipeline_id == BAD_ID and name == "python_script_two":  # fails halfway through
            raise error
        return real(pipeline, name, *args, **kwargs)

    monkeypatch.setattr(factory_assets, "step_code_version", failing)
    defs = load_location(root, tmp_path / "home")
    keys = asset_keys(defs)
    assert GOOD in keys
    assert not any(key.path[0] == BAD_ID for key in keys)  # not even the step built before the failure
    assert not any(s.name.startswith(BAD_ID) for s in defs.schedules)
    text = broken_description(defs)
    assert (
        f"model_configs/bad.yml:2: dags.sagemaker: internal error while building pipeline {BAD_ID}: "
        f"{type(error).__name__}: " in text
    )


def test_strict_mode_fails_on_a_pipeline_that_fails_to_build(tmp_path, monkeypatch):
    root = write_project(tmp_path / "p", script_step("python_script_one"))

    def failing(*args, **kwargs):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(factory_assets, "step_code_version", failing)
    with pytest.raises(BrokenConfigs, match="RecursionError"):
        build_defs(root, tmp_path / "home", strict=True)


# -- step names that Dagster turns into the same op name ---------------------------------------
def test_step_names_that_normalise_alike(tmp_path):
    root = write_project(tmp_path / "p", script_step("python_script-a") + script_step("python_script_a"))
    defs = load_location(root, tmp_path / "home")
    assert GOOD in asset_keys(defs)
    line = line_of(root / "model_configs" / "bad.yml", "name: python_script_a")
    expected = (
        f"model_configs/bad.yml:{line}: dags.sagemaker.tasks[1](python_script_a).name: step names "
        "'python_script-a' (tasks[0], line 11) and 'python_script_a' both become op name "
        "'bad_x_Daily__python_script_a' in Dagster ('-' is read as '_'); rename one"
    )
    assert expected in broken_description(defs)
    code, out = validate(root)
    assert code == 1 and expected in out


def test_op_names_shared_across_pipelines(tmp_path):
    """`p_x_c__python_script` + `python_script` and `p_x_c` + `python_script__python_script`
    are different assets with one op name; the second pipeline built is left out."""
    root = write_project(tmp_path / "p", script_step("python_script"))
    other = BAD.replace("action: Daily", "action: c__python_script").replace("domain: bad", "domain: p")
    (root / "model_configs" / "bad.yml").write_text(
        other.format(start="2024-1-1", cron="0 6 * * *", tasks=script_step("python_script"))
    )
    second = BAD.replace("action: Daily", "action: c").replace("domain: bad", "domain: p")
    (root / "model_configs" / "second.yml").write_text(
        second.format(start="2024-1-1", cron="0 6 * * *", tasks=script_step("python_script__python_script"))
    )
    defs = load_location(root, tmp_path / "home")
    keys = asset_keys(defs)
    assert {GOOD, AssetKey(["p_x_c__python_script", "python_script"])} <= keys
    assert AssetKey(["p_x_c", "python_script__python_script"]) not in keys
    text = broken_description(defs, AssetKey([BROKEN_GROUP, "model_configs_second_yml"]))
    expected = (
        "op name 'p_x_c__python_script__python_script' is also that of step 'python_script' of pipeline "
        "'p_x_c__python_script' (model_configs/bad.yml:"
    )
    assert expected in text
    code, out = validate(root)  # validate reports it too
    assert code == 1 and expected in out


# -- crons that never fire -----------------------------------------------------------------------
@pytest.mark.parametrize("cron,day", [("0 0 31 2 *", 31), ("0 0 30 2 *", 30)])
def test_cron_that_never_fires(tmp_path, cron, day):
    root = write_project(tmp_path / "p", script_step("python_script_a"), cron=cron)
    defs = load_location(root, tmp_path / "home")
    assert GOOD in asset_keys(defs)
    expected = (
        f"model_configs/bad.yml:8: dags.sagemaker.schedule_interval: cron '{cron}' never fires: "
        f"February has no day {day}"
    )
    assert expected in broken_description(defs)
    code, out = validate(root)
    assert code == 1 and expected in out


# -- broken files whose names normalise alike -------------------------------------------------------
def test_broken_files_whose_names_normalise_alike(tmp_path):
    root = write_tiny_project(tmp_path / "p")
    names = ["team-a.yml", "team_a.yml", "team a.yml"]
    for name in names:
        (root / "model_configs" / name).write_text(f"dags: 3  # {name}\n")
    defs = load_location(root, tmp_path / "home")
    keys = asset_keys(defs)
    assert GOOD in keys
    broken = sorted(k for k in keys if k.path[0] == BROKEN_GROUP)
    assert len(broken) == 3
    assert all(k.path[1].startswith("model_configs_team_a_yml_") for k in broken)
    described = {
        name: [k for k in broken if f"model_configs/{name}:1:" in broken_description(defs, k)] for name in names
    }
    assert all(len(found) == 1 for found in described.values())
    # the same key for the same file on the next load
    assert sorted(k for k in asset_keys(load_location(root, tmp_path / "home2")) if k.path[0] == BROKEN_GROUP) == broken


# -- start_date far outside any sensible range ----------------------------------------------------
@pytest.mark.parametrize("start,side", [("0001-01-01", "before 1970-01-01"), ("9999-12-31", "after 2100-12-31")])
def test_start_date_out_of_range(tmp_path, start, side):
    root = write_project(tmp_path / "p", script_step("python_script_a"), start=start)
    defs = load_location(root, tmp_path / "home")
    assert GOOD in asset_keys(defs)
    expected = f"model_configs/bad.yml:7: dags.sagemaker.default_args.start_date: start_date {start} is {side}"
    assert expected in broken_description(defs)
    code, out = validate(root)
    assert code == 1 and expected in out
