"""A strict check of five-field cron expressions (the form Dagster schedules accept)."""

from __future__ import annotations

import re

_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}),
    ("day of week", 0, 7, {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}),
)
_ITEM = re.compile(r"^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(\d+))?$")


def _value(text: str, low: int, high: int, names: dict[str, int], field: str) -> int:
    number = names.get(text) if not text.isdigit() else int(text)
    if number is None or not low <= number <= high:
        raise ValueError(f"cron {field} value {text!r} is outside {low}-{high}")
    return number


def check_cron(expression: str) -> None:
    """Raise ValueError naming the bad field of a five-field cron expression."""
    parts = expression.lower().split()
    if len(parts) != 5:
        raise ValueError(
            f"cron {expression!r} has {len(parts)} fields; write 5 (minute hour day-of-month month day-of-week)"
        )
    for part, (field, low, high, names) in zip(parts, _FIELDS):
        for item in part.split(","):
            match = _ITEM.match(item)
            if not match:
                raise ValueError(f"cron {field} field {part!r} is not valid")
            span, step = match.groups()
            if step is not None and int(step) == 0:
                raise ValueError(f"cron {field} step must be at least 1")
            if span != "*":
                bounds = [_value(b, low, high, names, field) for b in span.split("-")]
                if len(bounds) == 2 and bounds[0] > bounds[1]:
                    raise ValueError(f"cron {field} range {span!r} runs backwards")
