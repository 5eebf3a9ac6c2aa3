"""Time partitions from a pipeline's schedule_interval and start_date."""

from __future__ import annotations

from datetime import date, datetime, timezone
from functools import lru_cache

from dagster import TimeWindowPartitionsDefinition

from ml_pipelines.config.cron import parse_cron
from ml_pipelines.config.schema import EARLIEST_START_DATE, LATEST_START_DATE, PipelineConfig
from ml_pipelines.plan.windows import cron_of


def _at_most_daily(cron: str) -> bool:
    """At most one tick a day: a date is enough to name a partition."""
    parsed = parse_cron(cron)
    return len(parsed.minutes) == 1 and len(parsed.hours) == 1


@lru_cache(maxsize=None)
def partitions_for(cron: str, start: date) -> TimeWindowPartitionsDefinition:
    """One shared definition per distinct (cron, start_date): keys are dates for daily and
    coarser crons, date and time for finer ones."""
    if not EARLIEST_START_DATE <= start <= LATEST_START_DATE:  # the schema refuses these; a backstop
        raise ValueError(f"start_date {start.isoformat()} is outside {EARLIEST_START_DATE}..{LATEST_START_DATE}")
    fmt = "%Y-%m-%d" if _at_most_daily(cron) else "%Y-%m-%d-%H:%M"
    return TimeWindowPartitionsDefinition(
        cron_schedule=cron,
        start=datetime(start.year, start.month, start.day, tzinfo=timezone.utc),
        fmt=fmt,
        timezone="UTC",
    )


def pipeline_partitions(config: PipelineConfig) -> TimeWindowPartitionsDefinition | None:
    """The pipeline's time partitions; None without a cron (or with `@once`) or a start_date."""
    cron = cron_of(config.schedule_interval)
    start = config.default_args.start_date
    return partitions_for(cron, start) if cron and start else None
