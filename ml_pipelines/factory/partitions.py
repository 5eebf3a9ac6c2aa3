"""Time partitions from a pipeline's schedule_interval and start_date."""

from __future__ import annotations

from datetime import date, datetime, timezone
from functools import lru_cache

from dagster import TimeWindowPartitionsDefinition

PRESET_CRONS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


def cron_of(schedule_interval: str | None) -> str | None:
    """The cron behind a schedule_interval; None for no schedule and for @once."""
    if schedule_interval is None or schedule_interval == "@once":
        return None
    return PRESET_CRONS.get(schedule_interval, schedule_interval)


def _at_most_daily(cron: str) -> bool:
    minute, hour = cron.split()[:2]
    return minute.isdigit() and hour.isdigit()


@lru_cache(maxsize=None)
def partitions_for(cron: str, start: date) -> TimeWindowPartitionsDefinition:
    """One shared definition per distinct (cron, start_date): keys are dates for daily and
    coarser crons, date and time for finer ones."""
    fmt = "%Y-%m-%d" if _at_most_daily(cron) else "%Y-%m-%d-%H:%M"
    return TimeWindowPartitionsDefinition(
        cron_schedule=cron,
        start=datetime(start.year, start.month, start.day, tzinfo=timezone.utc),
        fmt=fmt,
        timezone="UTC",
    )
