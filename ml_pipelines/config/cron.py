"""Five-field cron expressions (the form Dagster schedules accept): the one parser.

`parse_cron` checks strictly (ValueError naming the bad field) and returns the values
each field allows; the config check, the plan's time windows and the factory's partition
keys all read crons through it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}),
    ("day of week", 0, 7, {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}),
)
_ITEM = re.compile(r"^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(\d+))?$")


@dataclass(frozen=True)
class Cron:
    """The values each field of a cron expression allows."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]  # of the month
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday (7 is read as 0)
    # Both day fields restricted: a day matches either one (as in cron and croniter).
    day_or: bool

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_days, in_weekdays = day.day in self.days, (day.weekday() + 1) % 7 in self.weekdays
        return (in_days or in_weekdays) if self.day_or else (in_days and in_weekdays)


def _value(text: str, low: int, high: int, names: dict[str, int], field: str) -> int:
    number = names.get(text) if not text.isdigit() else int(text)
    if number is None or not low <= number <= high:
        raise ValueError(f"cron {field} value {text!r} is outside {low}-{high}")
    return number


def _field_values(part: str, field: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for item in part.split(","):
        match = _ITEM.match(item)
        if not match:
            raise ValueError(f"cron {field} field {part!r} is not valid")
        span, step_text = match.groups()
        step = 1 if step_text is None else int(step_text)
        if step == 0:
            raise ValueError(f"cron {field} step must be at least 1")
        if span == "*":
            first, last = low, high
        else:
            bounds = [_value(b, low, high, names, field) for b in span.split("-")]
            if len(bounds) == 2 and bounds[0] > bounds[1]:
                raise ValueError(f"cron {field} range {span!r} runs backwards")
            first = bounds[0]
            last = bounds[-1] if len(bounds) == 2 or step_text is None else high  # "5/15": from 5 on
        values.update(range(first, last + 1, step))
    return frozenset(values)


@lru_cache(maxsize=512)
def parse_cron(expression: str) -> Cron:
    """The values of each field; ValueError naming the bad field."""
    parts = expression.lower().split()
    if len(parts) != 5:
        raise ValueError(
            f"cron {expression!r} has {len(parts)} fields; write 5 (minute hour day-of-month month day-of-week)"
        )
    minutes, hours, days, months, weekdays = (
        _field_values(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True)
    )
    if 7 in weekdays:
        weekdays = (weekdays - {7}) | {0}
    day_or = not parts[2].startswith("*") and not parts[4].startswith("*")
    return Cron(minutes, hours, days, months, weekdays, day_or)


def check_cron(expression: str) -> None:
    """Raise ValueError naming the bad field of a five-field cron expression."""
    parse_cron(expression)
