"""Loose values of the old config format, parsed with a whitelist and never evaluated.

The old generator accepted numbers as strings ("10"), arithmetic ("60 * 5"),
`timedelta(hours=1)` text, comma lists ("success,failed") and the text "None". Each is
parsed here with `ast` restricted to numbers, + - * / and unary signs, and a
`timedelta(...)` call with numeric keyword arguments.
"""

from __future__ import annotations

import ast
import operator
from datetime import date, datetime, timedelta
from typing import Any

MAX_EXPRESSION_LENGTH = 200
TIMEDELTA_UNITS = ("weeks", "days", "hours", "minutes", "seconds", "milliseconds", "microseconds")

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def _number(node: ast.AST, text: str) -> float | int:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _number(node.left, text), _number(node.right, text)
        if isinstance(node.op, ast.Div) and right == 0:
            raise ValueError(f"division by zero in {text!r}")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_number(node.operand, text))
    raise ValueError(f"{text!r} is not a number or arithmetic on numbers (+ - * / only)")


def _parse(text: str) -> ast.AST:
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ValueError(f"expression longer than {MAX_EXPRESSION_LENGTH} characters")
    try:
        return ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise ValueError(f"{text!r} is not a number or arithmetic on numbers (+ - * / only)") from None


def parse_number(value: Any) -> float | int:
    """10, 2.5, "10", "60 * 5" -> a number. Booleans are refused."""
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        return _number(_parse(value), value)
    raise ValueError(f"expected a number, got {type(value).__name__}")


def parse_int(value: Any) -> int:
    number = parse_number(value)
    if isinstance(number, float):
        if not number.is_integer():
            raise ValueError(f"expected a whole number, got {number}")
        number = int(number)
    return number


def _timedelta_call(node: ast.AST, text: str) -> timedelta | None:
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    is_timedelta = (isinstance(func, ast.Name) and func.id == "timedelta") or (
        isinstance(func, ast.Attribute)
        and func.attr == "timedelta"
        and isinstance(func.value, ast.Name)
        and func.value.id == "datetime"
    )
    if not is_timedelta or node.args:
        raise ValueError(f"{text!r}: only timedelta(<unit>=<number>, ...) is understood")
    kwargs = {}
    for kw in node.keywords:
        if kw.arg not in TIMEDELTA_UNITS:
            raise ValueError(f"{text!r}: timedelta unit {kw.arg!r} unknown; use {', '.join(TIMEDELTA_UNITS)}")
        kwargs[kw.arg] = _number(kw.value, text)
    return timedelta(**kwargs)


def parse_timedelta(value: Any) -> timedelta:
    """timedelta(hours=1, minutes=5) text, or a number of seconds (arithmetic allowed)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        node = _parse(value)
        delta = _timedelta_call(node, value)
        if delta is not None:
            return delta
        return timedelta(seconds=_number(node, value))
    return timedelta(seconds=parse_number(value))


def parse_seconds(value: Any) -> float:
    """Seconds as a number, arithmetic, or timedelta text."""
    return parse_timedelta(value).total_seconds()


def none_if_blank(value: Any) -> Any:
    """The text "None"/"null"/"" (any case, surrounding spaces) means no value."""
    if isinstance(value, str) and value.strip().lower() in ("", "none", "null"):
        return None
    return value


def parse_comma_list(value: Any) -> list[str]:
    """ "a, b" -> ["a", "b"]; a list stays a list; None -> []."""
    value = none_if_blank(value)
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple)):
        return [str(item).strip() for item in value]
    raise ValueError(f"expected a string or a list, got {type(value).__name__}")


def parse_date(value: Any) -> date:
    """2020-08-04, "2020-8-4" and datetimes -> a date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        parts = value.strip().split("-")
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            try:
                return date(int(parts[0]), int(parts[1]), int(parts[2]))
            except ValueError as exc:
                raise ValueError(f"{value!r} is not a valid date: {exc}") from None
    raise ValueError(f"{value!r} is not a date; write YYYY-MM-DD, e.g. 2020-08-04")
