"""Parameter files (`parameters.json` or a named one): the one place they are resolved.

A file holds sections `DEV`, `BETA`, `PROD`, `COMMON` and optionally `LOCAL`. A step gets
`COMMON` overlaid (shallowly, key by key) by its environment's section; a file with only
`COMMON` serves every environment. For LOCAL without a `LOCAL` section, COMMON overlaid by
`DEV` (if any) is used with every text value that is an
`s3://bucket/key` URI (also inside lists and mappings) replaced by the local path
`<storage_root>/bucket/key` (`s3_uri_to_local_path`; a trailing `/` is kept). Only whole
values are mapped; `s3a://` and URIs inside longer text are left alone.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any

from ml_pipelines.config.schema import CLOUD_ENVIRONMENTS, ENVIRONMENTS

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


def read_parameter_file(path: Path) -> tuple[dict[str, Any], str]:
    """(the parsed top-level object, the text); ParameterFileError for bad JSON or shape."""
    path = Path(path)
    if path.stat().st_size > MAX_PARAMETER_FILE_BYTES:
        raise ParameterFileError(path, f"file larger than {MAX_PARAMETER_FILE_BYTES} bytes")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParameterFileError(path, f"not UTF-8 text: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParameterFileError(path, f"invalid JSON: {exc.msg} (column {exc.colno})", exc.lineno) from None
    if not isinstance(data, dict):
        raise ParameterFileError(path, f"expected a JSON object with sections {', '.join(SECTIONS)}", 1)
    for key, section in data.items():
        if key not in SECTIONS:
            close = difflib.get_close_matches(key.upper(), SECTIONS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ParameterFileError(
                path, f"unknown section {key!r}{hint}; allowed: {', '.join(SECTIONS)}", json_key_line(text, key)
            )
        if not isinstance(section, dict):
            raise ParameterFileError(
                path, f"section {key} must be a JSON object of parameter names to values", json_key_line(text, key)
            )
    return data, text


def resolve_parameters(parameter_file: Path | None, env: str, storage_root: Path | None = None) -> dict[str, Any]:
    """COMMON overlaid by the env's section; a missing file (or None) gives {}.

    LOCAL uses the LOCAL section when there is one, else COMMON + DEV with their s3://
    values mapped under `storage_root` (required only when there is such a value). A file
    with no DEV/BETA/PROD section at all (COMMON only) serves every environment. Raises
    ParameterFileError naming the file for bad JSON (with the line), an unknown or
    non-object section, or a missing env section when the file has other env sections.
    """
    env = env.upper()
    if env not in ENVIRONMENTS:
        raise ValueError(f"unknown environment {env!r}; allowed: {', '.join(ENVIRONMENTS)}")
    if parameter_file is None or not Path(parameter_file).is_file():
        return {}
    path = Path(parameter_file)
    data, _ = read_parameter_file(path)
    common = data.get("COMMON") or {}
    if env in data:
        return {**common, **data[env]}
    has_env_sections = any(section in data for section in CLOUD_ENVIRONMENTS)
    if env == "LOCAL":
        merged = {**common, **(data.get("DEV") or {})}
        try:
            return map_s3_values(merged, Path(storage_root) if storage_root else None)
        except ValueError as exc:
            raise ParameterFileError(path, f"LOCAL has no section and falls back to DEV: {exc}") from None
    if not has_env_sections:
        return dict(common)  # a COMMON-only file serves every environment
    present = ", ".join(s for s in CLOUD_ENVIRONMENTS if s in data)
    raise ParameterFileError(
        path, f"no {env} section (the file has {present}): a step in {env} reads COMMON plus the {env} section", 1
    )
