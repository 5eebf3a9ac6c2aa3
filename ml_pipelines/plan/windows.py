"""A run's time window, from the pipeline's schedule_interval and start_date.

A pipeline with a cron (or preset other than `@once`) and a start_date is partitioned.
For a logical date D the window starts at the first cron tick on D (UTC), or, when the
cron has no tick on D, at the last tick before D (the window holding D, e.g. the Sunday
of a weekly cron); it ends at the next tick. This matches the partition keyed D in
Dagster's time-window partitions. Other pipelines are unpartitioned (`None`): their
templates see the run's current date (or the date asked for).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from ml_pipelines.config.cron import SEARCH_DAYS, Cron, cron_of, parse_cron, ticks_on
from ml_pipelines.plan.model import TimeWindow
from ml_pipelines.plan.storage_layout import PlanError


def _parsed(cron: str) -> Cron:
    try:
        return parse_cron(cron)
    except ValueError as exc:
        raise PlanError(str(exc)) from None


def next_tick(cron: str, after: datetime, *, inclusive: bool = True) -> datetime:
    """The first tick of `cron` at (inclusive) or after `after` (UTC)."""
    parsed, day = _parsed(cron), after.date()
    for offset in range(SEARCH_DAYS):
        for tick in ticks_on(parsed, day + timedelta(days=offset)):
            if tick > after or (inclusive and tick == after):
                return tick
    raise PlanError(f"cron {cron!r} has no tick within {SEARCH_DAYS} days of {after:%Y-%m-%d}")


def previous_tick(cron: str, before: datetime) -> datetime:
    """The last tick of `cron` strictly before `before` (UTC)."""
    parsed, day = _parsed(cron), before.date()
    for offset in range(SEARCH_DAYS):
        for tick in reversed(ticks_on(parsed, day - timedelta(days=offset))):
            if tick < before:
                return tick
    raise PlanError(f"cron {cron!r} has no tick within {SEARCH_DAYS} days before {before:%Y-%m-%d}")


def ticks_before(cron: str, end: datetime, count: int, not_before: datetime) -> list[datetime]:
    """Up to `count` ticks of `cron` in [not_before, end) (UTC), the latest ones, oldest
    first. Walks back a day at a time from `end`, so the cost follows `count` and the
    days searched, not the number of ticks since `not_before`."""
    parsed, day, found = _parsed(cron), end.date(), []
    while len(found) < count and day >= not_before.date():
        found += [t for t in reversed(ticks_on(parsed, day)) if not_before <= t < end][: count - len(found)]
        day -= timedelta(days=1)
    return found[::-1]


def midnight(day: date) -> datetime:
    """The start of `day`, UTC."""
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


def window_for(schedule_interval: str | None, start_date: date | None, logical_date: date) -> TimeWindow | None:
    """The time window of the run for `logical_date` (see the module doc); None when the
    pipeline is unpartitioned (no cron, `@once`, or no start_date). PlanError when the
    date lies before the pipeline's first partition."""
    cron = cron_of(schedule_interval)
    if cron is None or start_date is None:
        return None
    if isinstance(logical_date, datetime):
        logical_date = logical_date.date()
    day_start = midnight(logical_date)
    first = next_tick(cron, day_start)
    start = first if first < day_start + timedelta(days=1) else previous_tick(cron, day_start)
    first_partition = next_tick(cron, midnight(start_date))
    if start < first_partition:
        raise PlanError(
            f"{logical_date.isoformat()} is before the first partition ({first_partition:%Y-%m-%d %H:%M} UTC) "
            f"of a pipeline with start_date {start_date.isoformat()}"
        )
    return TimeWindow(start=start, end=next_tick(cron, start, inclusive=False))
