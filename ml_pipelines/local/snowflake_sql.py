"""Snowflake SQL, read with sqlglot, as the LOCAL warehouse needs it: which tables a
statement writes, and `COPY INTO ... FROM @stage/path` rewritten to name the stage's files
(fakesnow lists no stage paths). Imported when a SQL step runs, not at load time.
"""

from __future__ import annotations

import re
from pathlib import Path

import sqlglot
from sqlglot import exp


def parse(statement: str) -> exp.Expr | None:
    """The statement's expression; None when sqlglot cannot read it (the warehouse judges)."""
    try:
        return sqlglot.parse_one(statement, read="snowflake")
    except Exception:  # noqa: BLE001
        return None


def normalise_name(name: str) -> str:
    """Snowflake identifier rules: unquoted names are upper-case, quoted ones kept."""
    return name[1:-1].replace('""', '"') if name.startswith('"') and name.endswith('"') else name.upper()


def written_tables(expr: exp.Expr | None) -> list[exp.Table]:
    """Tables a statement writes rows to: INSERT/COPY/CTAS/MERGE/UPDATE/DELETE targets."""
    if isinstance(expr, (exp.Insert, exp.Copy, exp.Merge, exp.Update, exp.Delete)):
        target = expr.this
    elif isinstance(expr, exp.Create) and str(expr.kind).upper() == "TABLE" and expr.expression is not None:
        target = expr.this
    else:
        return []
    if isinstance(target, exp.Schema):
        target = target.this
    return [target] if isinstance(target, exp.Table) else []


def creates_table_if_not_exists(expr: exp.Expr | None) -> bool:
    return (
        isinstance(expr, exp.Create)
        and str(expr.kind).upper() == "TABLE"
        and bool(expr.args.get("exists"))
        and not expr.args.get("replace")
    )


def _copy_source(expr: exp.Copy) -> exp.Var | None:
    """The `@stage/path` of `COPY INTO t FROM @stage/path` or `FROM (SELECT ... FROM @stage/path)`."""
    files = expr.args.get("files") or []
    source = files[0] if files else None
    if isinstance(source, exp.Subquery) and isinstance(source.this, exp.Select):
        source = source.this.args.get("from_")
        source = source.this if isinstance(source, exp.From) else None
    var = source.this if isinstance(source, exp.Table) else None
    return var if isinstance(var, exp.Var) and str(var.this).startswith("@") else None


def _stage_files(stage_dir: Path, prefix: str, pattern: str | None, key_of: str) -> list[str]:
    """Files below a stage whose relative path starts with `prefix` (and fully matches PATTERN)."""
    if not stage_dir.is_dir():
        return []
    regex = re.compile(pattern) if pattern else None
    found = []
    for path in sorted(p for p in stage_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(stage_dir).as_posix()
        if any(part.startswith(".") for part in rel.split("/")) or not rel.startswith(prefix):
            continue
        if regex and not (regex.fullmatch(rel) or regex.fullmatch(f"{key_of}{rel}")):
            continue
        found.append(rel)
    return found


def translate_copy(expr: exp.Copy, stages: dict[str, tuple[Path, str]]) -> tuple[str, list[str]] | None:
    """Rewrite `COPY INTO t FROM @stage/prefix [PATTERN=...]` to `... FROM @stage FILES=(...)`.

    `stages`: normalised stage name -> (local dir, its s3 key prefix below the bucket).
    Returns (sql, files), or None when the statement is left to fakesnow as written.
    """
    params = expr.args.get("params") or []
    if any(p.this.name.upper() == "FILES" for p in params):
        return None
    var = _copy_source(expr)
    if var is None:
        return None
    ref, _, prefix = str(var.this)[1:].partition("/")
    stage = stages.get(normalise_name(ref.split(".")[-1]))
    if stage is None:
        return None
    pattern = None
    kept = []
    for p in params:
        if p.this.name.upper() == "PATTERN":
            pattern = p.expression.name if isinstance(p.expression, exp.Literal) else None
            if pattern is None:
                return None  # a bound PATTERN: leave it
        else:
            kept.append(p)
    files = _stage_files(stage[0], prefix, pattern, stage[1])
    if not files:
        return "", []
    rewritten = expr.copy()
    new_var = _copy_source(rewritten)
    assert new_var is not None
    new_var.set("this", "@" + ref)
    files_param = exp.CopyParameter(
        this=exp.Var(this="FILES"), expression=exp.Tuple(expressions=[exp.Literal.string(f) for f in files])
    )
    rewritten.set("params", [*[p.copy() for p in kept], files_param])
    return rewritten.sql(dialect="snowflake"), files


def qualified_table(table: exp.Table, database: str, schema: str) -> tuple[str, exp.Table]:
    """("DB.SCHEMA.TABLE", table expr): the parts a statement left out come from the session."""
    full = exp.Table(
        this=table.this.copy(),
        db=table.args["db"].copy() if table.args.get("db") else exp.to_identifier(schema),
        catalog=table.args["catalog"].copy() if table.args.get("catalog") else exp.to_identifier(database),
    )
    parts = (full.args["catalog"], full.args["db"], full.this)
    name = ".".join(p.name if getattr(p, "quoted", False) else p.name.upper() for p in parts)
    return name, full
