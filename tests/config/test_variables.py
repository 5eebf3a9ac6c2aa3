from pathlib import Path

import pytest

from ml_pipelines.config.variables import (
    MissingVariableError,
    Variables,
    VariablesError,
    env_var_name,
    load_variables,
)

YAML = """\
COMMON:
  CI_STAGING: ci_stage
  THRESHOLDS: '{"min": 0.7, "max": 0.9}'
  MAPPING: {"a": [1, 2]}
  COUNT: 5
  my.var: dotted
DEV:
  CI_STAGING: ci_stage_dev
PROD:
  CI_STAGING: ci_stage_prod
stages:
  ci_stage: s3://my-bucket/stages/ci/
"""


def write(tmp_path: Path, text: str = YAML) -> Path:
    (tmp_path / "variables.yml").write_text(text)
    return tmp_path


def test_common_overlaid_by_env(tmp_path):
    write(tmp_path)
    dev = load_variables(tmp_path, "DEV", environ={})
    assert dev.value("CI_STAGING") == "ci_stage_dev"
    assert load_variables(tmp_path, "prod", environ={}).value("CI_STAGING") == "ci_stage_prod"
    local = load_variables(tmp_path, "LOCAL", environ={})
    assert local.value("CI_STAGING") == "ci_stage"  # no LOCAL section: COMMON
    assert local.stages == {"ci_stage": "s3://my-bucket/stages/ci/"}
    assert local.source == tmp_path / "variables.yml"


def test_value_is_text_and_json_parses(tmp_path):
    v = load_variables(write(tmp_path), "DEV", environ={})
    assert v.value("COUNT") == "5"
    assert v.value("MAPPING") == '{"a": [1, 2]}'
    assert v.json("THRESHOLDS") == {"min": 0.7, "max": 0.9}
    assert v.json("MAPPING") == {"a": [1, 2]}  # a mapping passes through
    assert v.json("COUNT") == 5


def test_env_var_overrides_file_and_adds_new(tmp_path):
    write(tmp_path)
    environ = {
        "ML_PIPELINES_VAR_CI_STAGING": "from_env",
        "ML_PIPELINES_VAR_MY_VAR": "dotted_env",
        "ML_PIPELINES_VAR_NEW_ONE": '{"x": 1}',
        "OTHER": "ignored",
    }
    v = load_variables(tmp_path, "DEV", environ=environ)
    assert v.value("CI_STAGING") == "from_env"
    assert v.value("my.var") == "dotted_env"
    assert v.json("NEW_ONE") == {"x": 1}
    assert env_var_name("my.var") == "ML_PIPELINES_VAR_MY_VAR"


def test_env_var_read_from_os_environ(tmp_path, monkeypatch):
    monkeypatch.setenv("ML_PIPELINES_VAR_FROM_OS", "yes")
    assert load_variables(tmp_path, "LOCAL").value("FROM_OS") == "yes"


def test_env_builtin(tmp_path):
    assert load_variables(tmp_path, "BETA", environ={}).value("ENV") == "BETA"
    write(tmp_path, "COMMON:\n  ENV: custom\n")
    assert load_variables(tmp_path, "BETA", environ={}).value("ENV") == "custom"


def test_missing_file_is_empty(tmp_path):
    v = load_variables(tmp_path, "DEV", environ={})
    assert v.values == {} and v.stages == {} and v.source is None


def test_missing_variable_names_env_and_both_ways(tmp_path):
    v = load_variables(write(tmp_path), "PROD", environ={})
    with pytest.raises(MissingVariableError) as exc:
        v.value("NOPE")
    msg = str(exc.value)
    assert "'NOPE'" in msg and "PROD" in msg and "ML_PIPELINES_VAR_NOPE" in msg
    assert str(tmp_path / "variables.yml") in msg


def test_bad_files(tmp_path):
    write(tmp_path, "COMMON:\n  a: [1, 2\n")
    with pytest.raises(VariablesError) as exc:
        load_variables(tmp_path, "DEV", environ={})
    assert "YAML syntax error" in str(exc.value) and exc.value.line is not None
    write(tmp_path, "COMMON: {}\nDEVV:\n  a: 1\n")
    with pytest.raises(VariablesError) as exc:
        load_variables(tmp_path, "DEV", environ={})
    assert exc.value.line == 2 and "unknown section 'DEVV'" in str(exc.value)
    write(tmp_path, "COMMON:\n  - a\n")
    with pytest.raises(VariablesError, match="COMMON: expected a mapping"):
        load_variables(tmp_path, "DEV", environ={})
    write(tmp_path, "stages:\n  s: not-a-uri\n")
    with pytest.raises(VariablesError, match="stages.s"):
        load_variables(tmp_path, "DEV", environ={})
    with pytest.raises(ValueError, match="unknown environment"):
        load_variables(tmp_path, "QA", environ={})


def test_variables_direct_construction():
    v = Variables(values={"A": "1"}, env="DEV")
    assert v.value("A") == "1" and v.json("A") == 1
