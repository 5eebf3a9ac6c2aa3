"""Five-field cron expressions (the form Dagster schedules accept): the one parser.

`parse_cron` checks strictly (ValueError naming the bad field) and returns the values
each field allows; the config check, the plan's time windows and the factory's partition
keys all read crons through it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
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


PRESET_CRONS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
SEARCH_DAYS = 366 * 9  # "0 0 29 2 1"-style crons can skip years


def cron_of(schedule_interval: str | None) -> str | None:
    """The cron behind a schedule_interval; None for no schedule and for `@once`."""
    if schedule_interval is None or schedule_interval == "@once":
        return None
    return PRESET_CRONS.get(schedule_interval, schedule_interval)


def ticks_on(cron: Cron, day: date) -> list[datetime]:
    """The ticks of `cron` on `day` (UTC), in order."""
    if not cron.matches_day(day):
        return []
    return [
        datetime.combine(day, time(h, m), tzinfo=timezone.utc) for h in sorted(cron.hours) for m in sorted(cron.minutes)
    ]


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


_MONTH_NAMES = "January February March April May June July August September October November December".split()
# 2000-2027: every (month, day, weekday), Feb 29 included, occurs in these 28 years.
_CYCLE_START, _CYCLE_DAYS = date(2000, 1, 1), (date(2028, 1, 1) - date(2000, 1, 1)).days


def _first_day(cron: Cron) -> date | None:
    """The first day from 2000-01-01 on that the cron fires on; None: it never fires."""
    for offset in range(_CYCLE_DAYS):
        day = _CYCLE_START + timedelta(days=offset)
        if cron.matches_day(day):
            return day
    return None


@lru_cache(maxsize=512)
def check_cron(expression: str) -> None:
    """Raise ValueError naming the bad field of a five-field cron expression, or saying
    why it never fires (Dagster refuses `0 0 31 2 *`; no such cron would ever tick)."""
    cron = parse_cron(expression)
    if _first_day(cron) is not None:
        return
    months = sorted(cron.months)
    days = sorted(cron.days)
    longest = max(29 if m == 2 else 30 if m in (4, 6, 9, 11) else 31 for m in months)
    if min(days) > longest:
        day_text = f"day {days[0]}" if len(days) == 1 else "days " + ", ".join(map(str, days))
        names = [_MONTH_NAMES[m - 1] for m in months]
        month_text = names[0] + " has" if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]} have"
        why = f"{month_text} no {day_text}"
    else:
        why = "no date matches its day-of-month, month and day-of-week fields together"
    raise ValueError(f"cron {expression!r} never fires: {why}")
