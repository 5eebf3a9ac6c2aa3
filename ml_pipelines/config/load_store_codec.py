"""The load cache's codecs: each kind of result the load keeps (see load_store.py), as
plain JSON data and back.

Decoding checks the shape of what it reads and builds only our own plain classes from
strings, numbers and lists. A parsed config keeps its YAML document only: its pipeline
models are validated again from the document's data on reuse (`loader._load_file` does,
as for a fresh parse), so data from the file gets the checks a config gets.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ml_pipelines.config.checks import _SqlFile
from ml_pipelines.config.load_store import Codec, Unencodable
from ml_pipelines.config.parameters import ParameterFile, ParameterProblem
from ml_pipelines.config.yaml_loader import Mark, Positions, YamlDocument

_TAG = "\0"  # the one key of an object standing for a date or datetime
_SCALARS = (str, int, float, bool, type(None))


# -- YAML and JSON data: dicts with text keys, lists, scalars, dates -----------------------
def encode_data(value: Any) -> Any:
    cls = value.__class__
    if cls is str or cls is int or cls is bool or value is None:
        return value
    if cls is float:
        if not math.isfinite(value):
            raise Unencodable("a non-finite number")
        return value
    if cls is dict:
        out = {}
        for key, item in value.items():
            if key.__class__ is not str or key == _TAG:
                raise Unencodable(f"mapping key {key!r}")
            out[key] = encode_data(item)
        return out
    if cls is list:
        return [encode_data(item) for item in value]
    if cls is datetime:
        return {_TAG: ["datetime", value.isoformat()]}
    if cls is date:
        return {_TAG: ["date", value.isoformat()]}
    raise Unencodable(f"a {cls.__name__} value")


def decode_data(data: Any) -> Any:
    cls = data.__class__
    if cls is dict:
        if _TAG in data:
            kind, text = data[_TAG]
            if kind == "datetime":
                return datetime.fromisoformat(text)
            if kind == "date":
                return date.fromisoformat(text)
            raise ValueError(f"unknown tag {kind!r}")
        return {key: decode_data(item) for key, item in data.items()}
    if cls is list:
        return [decode_data(item) for item in data]
    if isinstance(data, _SCALARS):
        return data
    raise TypeError(f"unexpected {cls.__name__}")  # pragma: no cover - json.loads builds no other


def _text(value: Any) -> str:
    if value.__class__ is not str:
        raise TypeError(f"expected text, got {value.__class__.__name__}")
    return value


def _line(value: Any) -> int:
    if value.__class__ is not int:
        raise TypeError(f"expected a line number, got {value.__class__.__name__}")
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


# -- ("parsed", config file): the YAML document ----------------------------------------------
# Positions are one row per path (most paths have a key and a value position): [length of
# the part shared with the previous row's path, the rest of the path, key, value], where a
# position is a line of the document's own file, [index in "files", line] elsewhere, or
# None when there is none.
def _encode_mark(where: Any, own: Path, files: dict[Path, int]) -> Any:
    if where is None or where.__class__ is int:
        return where
    if where.file == own:
        return where.line
    return [files.setdefault(where.file, len(files)), where.line]


def _encode_positions(positions: Positions, own: Path, files: dict[Path, int]) -> list:
    keys, values = positions._keys, positions._values
    rows = []
    previous: tuple = ()
    for path in [*values, *(p for p in keys if p not in values)]:
        shared = 0
        for a, b in zip(previous, path, strict=False):
            if a != b or a.__class__ is not b.__class__:
                break
            shared += 1
        rest = list(path[shared:])
        rows.append(
            [shared, rest, _encode_mark(keys.get(path), own, files), _encode_mark(values.get(path), own, files)]
        )
        previous = path
    return rows


def encode_parsed(value: tuple[YamlDocument, dict]) -> dict:
    doc, _validated = value  # the models are validated again from doc.data on reuse
    if doc.issues or doc.fatal:
        raise Unencodable("a document with issues")
    files: dict[Path, int] = {}
    positions = _encode_positions(doc.positions, doc.file, files)
    return {
        "file": str(doc.file),
        "root": str(doc.root),
        "data": encode_data(doc.data),
        "includes": [str(p) for p in doc.includes],
        "files": [str(p) for p in files],
        "positions": positions,
    }


def _decode_positions(rows: list, files: list[Path], file: Path) -> Positions:
    keys: dict = {}
    values: dict = {}
    marks: dict = {}

    def mark(where: Any) -> Any:
        if where.__class__ is int:
            return where
        index, line = where
        found = marks.get((index, line))
        if found is None:
            found = marks[index, line] = Mark(files[_line(index)], _line(line))
        return found

    path: tuple = ()
    for shared, rest, key, value in rows:
        if rest.__class__ is not list or shared.__class__ is not int or not 0 <= shared <= len(path):
            raise TypeError("bad position row")
        for part in rest:
            if part.__class__ is not str and part.__class__ is not int:
                raise TypeError("bad key path")
        path = path[:shared] + tuple(rest)
        if key is not None:
            keys[path] = mark(key)
        if value is not None:
            values[path] = mark(value)
    return Positions(keys, values, file=file)


def decode_parsed(data: dict) -> tuple[YamlDocument, dict]:
    file = Path(_text(data["file"]))
    files = [Path(_text(p)) for p in data["files"]]
    doc = YamlDocument(
        file=file,
        root=Path(_text(data["root"])),
        data=decode_data(data["data"]),
        positions=_decode_positions(data["positions"], files, file),
        includes=[Path(_text(p)) for p in data["includes"]],
    )
    return doc, {}


# -- the file checks and summaries ---------------------------------------------------------
def encode_parameter_file(value: ParameterFile) -> dict:
    return {
        "path": str(value.path),
        "sections": encode_data(value.sections),
        "problems": [[p.line, _text(p.message)] for p in value.problems],
    }


def decode_parameter_file(data: dict) -> ParameterFile:
    sections = decode_data(data["sections"])
    if not isinstance(sections, dict) or not all(isinstance(s, dict) for s in sections.values()):
        raise TypeError("sections must be a mapping of mappings")
    problems = tuple(
        ParameterProblem(None if line is None else _line(line), _text(msg)) for line, msg in data["problems"]
    )
    return ParameterFile(Path(_text(data["path"])), sections, problems)


def _texts(value: Any) -> list[str]:
    if value.__class__ not in (list, tuple):
        raise TypeError(f"expected a list, got {value.__class__.__name__}")
    return [_text(item) for item in value]


def _requirements(value: Any) -> list:
    """(digest, [(line, named file)]) of `plan.versions._requirements_file`, both ways."""
    digest, includes = value
    if includes.__class__ not in (list, tuple):
        raise TypeError(f"expected a list, got {includes.__class__.__name__}")
    return [_text(digest), [[_text(line), _text(named)] for line, named in includes]]


def _decode_requirements(data: Any) -> tuple[str, list[tuple[str, str]]]:
    digest, includes = _requirements(data)
    return digest, [(line, named) for line, named in includes]


CODECS: dict[str, Codec] = {
    "parsed": Codec(encode_parsed, decode_parsed),
    "parameter file": Codec(encode_parameter_file, decode_parameter_file),
    "sql file": Codec(
        lambda v: [_optional_text(v.text), _optional_text(v.problem)],
        lambda d: _SqlFile(_optional_text(d[0]), _optional_text(d[1])),
    ),
    "notebook problems": Codec(_texts, _texts),
    "digest": Codec(_text, _text),
    "notebook summary": Codec(_optional_text, _optional_text),
    "tables written": Codec(lambda v: _texts(v), lambda d: tuple(_texts(d))),
    "requirements": Codec(_requirements, _decode_requirements),
}
