"""Parameter files (`parameters.json` or a named one): the one place they are resolved.

A file holds sections `DEV`, `BETA`, `PROD`, `COMMON` and optionally `LOCAL`. A step gets
`COMMON` overlaid (shallowly, key by key) by its environment's section; a file with only
`COMMON` serves every environment. For LOCAL without a `LOCAL` section, COMMON overlaid by
`DEV` (if any) is used with every text value that is an
`s3://bucket/key` URI (also inside lists and mappings) replaced by the local path
`<storage_root>/bucket/key` (`s3_uri_to_local_path`; a trailing `/` is kept). Only whole
values are mapped; `s3a://` and URIs inside longer text are left alone.

One reader (`read_parameter_file`) for the load's checks and for a run: it returns every
problem of the file itself; `ParameterFile.env_problem` says whether an environment has
its section; `resolve_parameters` raises the first problem either finds.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml_pipelines.config.schema import CLOUD_ENVIRONMENTS, ENVIRONMENTS
from ml_pipelines.config.text import NotUtf8Error, read_text

SECTIONS = ("COMMON", *ENVIRONMENTS)
MAX_PARAMETER_FILE_BYTES = 5_000_000


class ParameterFileError(ValueError):
    """A parameter file cannot be used; the message names the file (and line when known)."""

    def __init__(self, path: Path, message: str, line: int | None = None) -> None:
        self.path, self.line, self.detail = Path(path), line, message
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """'s3://bucket/a/b' -> ('bucket', 'a/b'); ValueError for anything else."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"s3 URI without a bucket: {uri!r}")
    return bucket, key


def s3_uri_to_local_path(uri: str, storage_root: str | Path) -> Path:
    """The LOCAL mirror of an S3 object: s3://bucket/key -> <storage_root>/bucket/key
    (absolute). Refuses keys that climb out of the root (`..`)."""
    bucket, key = split_s3_uri(uri)
    root = Path(storage_root).resolve()
    path = (root / bucket / key).resolve()
    if path != root and root not in path.parents:
        raise ValueError(f"{uri!r} points outside the local storage root {root}")
    return path


def _local_text(uri: str, storage_root: Path) -> str:
    text = str(s3_uri_to_local_path(uri, storage_root))
    return text + "/" if uri.endswith("/") and not text.endswith("/") else text


def map_s3_values(value: Any, storage_root: Path | None, *, where: str = "") -> Any:
    """`value` with every s3:// text (recursively in lists and mappings) made a local path."""
    if isinstance(value, str):
        if not value.startswith("s3://"):
            return value
        if storage_root is None:
            raise ValueError(f"{where or 'value'}: {value!r} needs a local storage root to map to")
        return _local_text(value, storage_root)
    if isinstance(value, dict):
        return {k: map_s3_values(v, storage_root, where=f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [map_s3_values(v, storage_root, where=f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def json_key_line(text: str, key: str) -> int | None:
    """The line of the first `"key":` in JSON `text`; None when it is not there."""
    match = re.search(r'"' + re.escape(key) + r'"\s*:', text)
    return text.count("\n", 0, match.start()) + 1 if match else None


@dataclass(frozen=True)
class ParameterProblem:
    """One problem of a parameter file itself; `line` in the file when known."""

    line: int | None
    message: str


@dataclass(frozen=True)
class ParameterFile:
    """A parameter file as read: its sections, and every problem of the file itself (bad
    JSON, shape, unknown or non-object sections, keys written twice or with a leading
    `-`, no section at all). Whether it has the section an environment needs is asked
    per environment (`env_problem`, `resolve`)."""

    path: Path
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: tuple[ParameterProblem, ...] = ()

    def first_error(self) -> ParameterFileError | None:
        if not self.problems:
            return None
        problem = self.problems[0]
        return ParameterFileError(self.path, problem.message, problem.line)

    def env_problem(self, env: str) -> ParameterProblem | None:
        """Why a step in `env` cannot use this file although the file itself is fine: it
        has DEV, BETA or PROD sections but not `env`'s (LOCAL falls back to DEV, or to
        COMMON alone, and never lacks one)."""
        env = env.upper()
        if env == "LOCAL" or env in self.sections:
            return None
        present = [s for s in CLOUD_ENVIRONMENTS if s in self.sections]
        if not present:
            return None  # a COMMON-only file serves every environment
        return ParameterProblem(
            1,
            f"no {env} section (the file has {', '.join(present)}): a step in {env} reads COMMON plus "
            f'the {env} section; add "{env}": {{}} (an empty object is fine)',
        )

    def resolve(self, env: str, storage_root: Path | None = None) -> dict[str, Any]:
        """The parameters of a step in `env` (see `resolve_parameters`)."""
        error = self.first_error()
        if error is not None:
            raise error
        env = env.upper()
        problem = self.env_problem(env)
        if problem is not None:
            raise ParameterFileError(self.path, problem.message, problem.line)
        common = self.sections.get("COMMON") or {}
        if env in self.sections:
            return {**common, **self.sections[env]}
        if env == "LOCAL":
            merged = {**common, **(self.sections.get("DEV") or {})}
            try:
                return map_s3_values(merged, Path(storage_root) if storage_root else None)
            except ValueError as exc:
                raise ParameterFileError(self.path, f"LOCAL has no section and falls back to DEV: {exc}") from None
        return dict(common)  # a COMMON-only file serves every environment


def _close_section(key: str) -> str:
    close = difflib.get_close_matches(key.upper(), SECTIONS, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def read_parameter_file(path: Path) -> ParameterFile:
    """The file's sections and all its problems; never raises for what the file holds
    (a missing or unreadable file is a problem too)."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_PARAMETER_FILE_BYTES:
            return ParameterFile(
                path, problems=(ParameterProblem(None, f"file larger than {MAX_PARAMETER_FILE_BYTES} bytes"),)
            )
        text = read_text(path, what="parameter file")
    except NotUtf8Error as exc:
        return ParameterFile(path, problems=(ParameterProblem(exc.line, exc.detail),))
    except OSError as exc:
        return ParameterFile(path, problems=(ParameterProblem(None, f"cannot be read: {exc.strerror or exc}"),))
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in items:
            if key in seen:
                duplicates.append(key)
            seen[key] = value
        return seen

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        return ParameterFile(
            path, problems=(ParameterProblem(exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})"),)
        )
    if not isinstance(data, dict):
        return ParameterFile(
            path, problems=(ParameterProblem(1, f"expected a JSON object with sections {', '.join(SECTIONS)}"),)
        )
    problems = [
        ParameterProblem(json_key_line(text, key), f"key {key!r} is written twice") for key in dict.fromkeys(duplicates)
    ]
    sections: dict[str, dict[str, Any]] = {}
    for key, body in data.items():
        line = json_key_line(text, key)
        if key not in SECTIONS:
            problems.append(
                ParameterProblem(line, f"unknown section {key!r}{_close_section(key)} (allowed: {', '.join(SECTIONS)})")
            )
            continue
        if not isinstance(body, dict):
            problems.append(
                ParameterProblem(
                    line, f"section {key} must be an object of parameter names to values, not {_json_kind(body)}"
                )
            )
            continue
        sections[key] = body
        for name in body:
            if name.startswith("-"):
                problems.append(
                    ParameterProblem(
                        json_key_line(text, name) or line,
                        f"{key}.{name}: write parameter names without leading '-'; '--' is added when they are passed",
                    )
                )
    if not problems and not any(s in sections for s in ("COMMON", *CLOUD_ENVIRONMENTS)):
        problems.append(
            ParameterProblem(None, "no parameter sections; write COMMON and/or DEV, BETA, PROD (LOCAL optional)")
        )
    return ParameterFile(path, sections, tuple(problems))


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "text"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def resolve_parameters(parameter_file: Path | None, env: str, storage_root: Path | None = None) -> dict[str, Any]:
    """COMMON overlaid by the env's section; a missing file (or None) gives {}.

    LOCAL uses the LOCAL section when there is one, else COMMON + DEV with their s3://
    values mapped under `storage_root` (required only when there is such a value). A file
    with no DEV/BETA/PROD section at all (COMMON only) serves every environment. Raises
    ParameterFileError naming the file (and line) for any problem of the file
    (`read_parameter_file`: the same rules the load checks) and for a missing env section
    when the file has other env sections.
    """
    env = env.upper()
    if env not in ENVIRONMENTS:
        raise ValueError(f"unknown environment {env!r}; allowed: {', '.join(ENVIRONMENTS)}")
    if parameter_file is None or not Path(parameter_file).is_file():
        return {}
    return read_parameter_file(Path(parameter_file)).resolve(env, storage_root)
