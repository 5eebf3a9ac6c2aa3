"""Pipeline variables (`var.value.NAME`, `var.json.NAME` in templates), per environment.

Where a variable comes from, first match wins:

1. the environment variable `ML_PIPELINES_VAR_<NAME>` (read when `load_variables` runs;
   `<NAME>` is the variable name with every character other than a letter, digit or `_`
   replaced by `_`, compared case-insensitively, so `ML_PIPELINES_VAR_CI_STAGING` sets
   `CI_STAGING` and `ML_PIPELINES_VAR_MY_VAR` sets `my.var`);
2. the environment's section (`LOCAL`, `DEV`, `BETA`, `PROD`) of `model_configs/variables.yml`;
3. its `COMMON` section;
4. `ENV` only: the environment name itself (`LOCAL`, `DEV`...), so the old configs'
   `{{ var.value.ENV }}` works without defining it.

`variables.yml` may also hold a top-level `stages:` mapping of Snowflake stage name ->
`s3://` URI; the LOCAL warehouse creates those stages over local storage.

```yaml
COMMON:
  CI_STAGING: ci_stage
  THRESHOLDS: {"min": 0.7}
PROD:
  CI_STAGING: ci_stage_prod
stages:
  ci_stage: s3://my-bucket/stages/ci/
```

As in Airflow, `var.value.NAME` is always text: a mapping or list defined in YAML is given
as its JSON text, a number or boolean as its JSON text (`5`, `true`). `var.json.NAME`
parses a text value as JSON and passes a mapping, list, number or boolean through.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ml_pipelines.config.errors import format_key_path
from ml_pipelines.config.paths import FsMemo
from ml_pipelines.config.schema import ENVIRONMENTS
from ml_pipelines.config.yaml_loader import load_yaml

VARIABLES_FILE_NAMES = ("variables.yml", "variables.yaml")
ENV_VAR_PREFIX = "ML_PIPELINES_VAR_"
_SECTIONS = ("COMMON", *ENVIRONMENTS)
_TOP_LEVEL = (*_SECTIONS, "stages")
MAX_VARIABLES_FILE_BYTES = 1_000_000


class VariablesError(ValueError):
    """variables.yml cannot be read; the message names the file (and line when known)."""

    def __init__(self, path: Path, message: str, line: int | None = None) -> None:
        self.path, self.line, self.detail = path, line, message
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")


class MissingVariableError(LookupError):
    """A template asked for a variable that is not defined for the environment."""

    def __init__(self, name: str, env: str, source: Path | None = None) -> None:
        self.name, self.env = name, env
        file = str(source) if source is not None else "model_configs/variables.yml"
        super().__init__(
            f"variable {name!r} is not defined for environment {env}: add {name}: <value> under {env}: "
            f"(or COMMON:) in {file}, or set the environment variable {env_var_name(name)}"
        )


class VariableJsonError(ValueError):
    def __init__(self, name: str, env: str, error: json.JSONDecodeError) -> None:
        super().__init__(f"var.json.{name} (environment {env}): the value is not valid JSON: {error}")


def normalize_name(name: str) -> str:
    """The form compared between variable names and environment-variable suffixes."""
    return re.sub(r"[^0-9A-Za-z_]", "_", name).upper()


def env_var_name(name: str) -> str:
    """ML_PIPELINES_VAR_<NAME> for a variable name."""
    return ENV_VAR_PREFIX + normalize_name(name)


@dataclass(frozen=True)
class Variables:
    """The variables of one environment (file sections and environment variables merged)."""

    values: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, str] = field(default_factory=dict)
    env: str = "LOCAL"
    source: Path | None = None  # the variables.yml read, if any

    def lookup(self, name: str) -> Any:
        """The raw value (text, number, mapping...); MissingVariableError when undefined."""
        return lookup_variable(self.values, name, self.env, self.source)

    def value(self, name: str) -> str:
        """What `var.value.NAME` gives: text."""
        return as_text(self.lookup(name))

    def json(self, name: str) -> Any:
        """What `var.json.NAME` gives: the parsed JSON value."""
        return as_json(self.lookup(name), name, self.env)


def lookup_variable(values: Mapping[str, Any], name: str, env: str, source: Path | None = None) -> Any:
    if name in values:
        return values[name]
    wanted = normalize_name(name)
    for key, val in values.items():
        if normalize_name(key) == wanted:
            return val
    if name == "ENV":
        return env
    raise MissingVariableError(name, env, source)


def as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, default=str)


def as_json(value: Any, name: str, env: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise VariableJsonError(name, env, exc) from None
    return value


def _find_file(model_configs_dir: Path) -> Path | None:
    for name in VARIABLES_FILE_NAMES:
        candidate = Path(model_configs_dir) / name
        if candidate.is_file() or candidate.is_symlink():
            return candidate
    return None


def read_variables_file(path: Path, root: Path | None = None) -> dict[str, Any]:
    """The checked top-level mapping of a variables file (sections and stages).

    Parsed as the configs are (yaml_loader: no `!include`, the same node and depth
    limits, so an alias bomb stops early); `root`: the project dir, which the file must
    lie in once symlinks are resolved (default: its folder's parent)."""
    path = Path(path)
    root = Path(root) if root is not None else path.absolute().parent.parent
    escape = FsMemo().escape(root.absolute(), path.absolute())
    if escape is not None:
        raise VariablesError(path, escape)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise VariablesError(path, f"cannot read the file: {exc.strerror or exc}") from None
    if size > MAX_VARIABLES_FILE_BYTES:
        raise VariablesError(path, f"file larger than {MAX_VARIABLES_FILE_BYTES} bytes")
    doc = load_yaml(path, allow_include=False)
    if doc.issues:
        issue = doc.issues[0]
        where = format_key_path(issue.path)
        raise VariablesError(path, f"{where}: {issue.message}" if where else issue.message, issue.mark.line)
    data = doc.data
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise VariablesError(path, f"expected a mapping with sections {', '.join(_TOP_LEVEL)}", 1)
    for key, val in data.items():
        line = doc.positions.line((key,), prefer_key=True)
        if key not in _TOP_LEVEL:
            raise VariablesError(path, f"unknown section {key!r}; allowed: {', '.join(_TOP_LEVEL)}", line)
        if val is None:
            continue
        if not isinstance(val, dict):
            raise VariablesError(path, f"{key}: expected a mapping of names to values", line)
        if key == "stages":
            for stage, uri in val.items():
                if not isinstance(uri, str) or not uri.startswith("s3://") or len(uri) <= len("s3://"):
                    raise VariablesError(
                        path,
                        f"stages.{stage}: expected an s3://bucket/prefix URI, got {uri!r}"[:300],
                        doc.positions.line((key, stage)),
                    )
        else:
            for name in val:
                if not name:
                    raise VariablesError(path, f"{key}: variable names must be non-empty text", line)
    return data


def load_variables(model_configs_dir: Path, env: str, environ: Mapping[str, str] | None = None) -> Variables:
    """COMMON overlaid by the env's section of `<model_configs_dir>/variables.yml` (a missing
    file is fine), then `ML_PIPELINES_VAR_<NAME>` environment variables on top."""
    env = env.upper()
    if env not in ENVIRONMENTS:
        raise ValueError(f"unknown environment {env!r}; allowed: {', '.join(ENVIRONMENTS)}")
    source = _find_file(Path(model_configs_dir))
    data = read_variables_file(source, Path(model_configs_dir).absolute().parent) if source is not None else {}
    values: dict[str, Any] = {**(data.get("COMMON") or {}), **(data.get(env) or {})}
    environ = os.environ if environ is None else environ
    by_normalized = {normalize_name(k): k for k in values}
    for var, text in sorted(environ.items()):
        if var.startswith(ENV_VAR_PREFIX) and len(var) > len(ENV_VAR_PREFIX):
            suffix = var[len(ENV_VAR_PREFIX) :]
            values[by_normalized.get(normalize_name(suffix), suffix)] = text
    stages = {str(k): str(v) for k, v in (data.get("stages") or {}).items()}
    return Variables(values=values, stages=stages, env=env, source=source)
