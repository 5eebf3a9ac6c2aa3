"""What the UI shows about a step: owners, kinds, description, tables a SQL step writes."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from ml_pipelines.config.schema import ADDRESS_SEPARATORS
from ml_pipelines.config.session import LoadSession
from ml_pipelines.config.text import read_text

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,7}")


def _team(text: str) -> str:
    return "team:" + re.sub(r"\W", "_", text)


def owners_of(owner: str) -> list[str]:
    """E-mail addresses (one, or a ','/';' list) as they are; any other text as
    team:<text with non-word characters as _>. An address Dagster would refuse (its check
    is narrower than the config's) becomes a team name rather than a load error."""
    owner = owner.strip()
    if not owner:
        return []
    parts = [p.strip() for p in ADDRESS_SEPARATORS.split(owner) if p.strip()]
    if all("@" in p for p in parts):
        return list(dict.fromkeys(p if _EMAIL.fullmatch(p) else _team(p) for p in parts))
    return [_team(owner)]


def _first_markdown_cell(path: Path) -> str | None:
    try:
        data = json.loads(read_text(path, what="notebook"))
    except (OSError, ValueError, RecursionError):  # RecursionError: JSON nested too deep
        return None
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list):
        return None
    for cell in cells:
        if isinstance(cell, dict) and cell.get("cell_type") == "markdown":
            source = cell.get("source", "")
            if isinstance(source, list) and all(isinstance(s, str) for s in source):
                source = "".join(source)
            return source.strip() or None if isinstance(source, str) else None
    return None


def notebook_summary(path: Path | None, session: LoadSession | None = None) -> str | None:
    """The notebook's first markdown cell. `session`: the load's (worked out once per load
    and kept in the load cache)."""
    if path is None:
        return None
    if session is None:
        return _first_markdown_cell(path)
    return session.from_file("notebook summary", path, lambda: _first_markdown_cell(path))


_JINJA = re.compile(r"{{.*?}}|{%.*?%}|{#.*?#}", re.S)


@lru_cache(maxsize=4096)
def _tables_in(text: str) -> tuple[str, ...]:
    import sqlglot  # here: a load whose results are all cached does not need it
    from sqlglot import exp

    # Jinja placeholders become identifiers so the SQL around them still parses.
    sql = _JINJA.sub("jinja_placeholder", text)
    tables: list[str] = []
    try:
        statements = sqlglot.parse(sql, dialect="snowflake", error_level=sqlglot.ErrorLevel.IGNORE)
    except (sqlglot.errors.SqlglotError, RecursionError):  # RecursionError: deeply nested SQL
        return ()
    for statement in statements:
        if statement is None:
            continue
        target = None
        if isinstance(statement, (exp.Insert, exp.Create, exp.Merge, exp.Update, exp.Delete, exp.Copy)):
            target = statement.this
        if isinstance(target, exp.Schema):
            target = target.this
        if isinstance(target, exp.Table) and target.name:
            name = ".".join(p.name for p in target.parts)
            if name.upper() not in (t.upper() for t in tables):
                tables.append(name)
    return tuple(tables)


def tables_written(sql_files: tuple[Path, ...], session: LoadSession | None = None) -> list[str]:
    """Tables the SQL files write (INSERT, CREATE, MERGE, UPDATE, DELETE, COPY INTO targets).
    `session`: the load's (each file's tables worked out once per load and kept in the
    load cache)."""
    found: list[str] = []
    for path in sql_files:
        tables = (
            _tables_of(path)
            if session is None
            else session.from_file("tables written", path, lambda path=path: _tables_of(path))
        )
        for table in tables:
            if table not in found:
                found.append(table)
    return found


def _tables_of(path: Path) -> tuple[str, ...]:
    try:
        return _tables_in(read_text(path, what="SQL file"))
    except (OSError, ValueError):  # the checks report an unreadable file
        return ()
