"""`windows.ticks_before`: the catchup schedule's backward walk agrees with Dagster's partitions."""

from __future__ import annotations

from datetime import datetime, timezone
from itertools import islice

import pytest
from dagster import TimeWindowPartitionsDefinition

from ml_pipelines.plan.windows import ticks_before

START = datetime(2023, 1, 1, tzinfo=timezone.utc)
END = datetime(2026, 3, 1, 12, 7, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "cron", ["* * * * *", "0 6 * * *", "0 0 * * 0", "30 2 1 * *", "0 0 29 2 *", "*/15 9-17 * * 1-5", "0 0 1,15 * 3"]
)
def test_ticks_before_are_dagsters_latest_partition_starts(cron):
    partitions = TimeWindowPartitionsDefinition(cron_schedule=cron, start=START, fmt="%Y-%m-%d-%H:%M", timezone="UTC")
    windows = list(islice(partitions._reverse_iterate_time_windows(END.timestamp()), 50))
    expected = [w.start for w in windows if w.start >= START][::-1]
    assert ticks_before(cron, windows[0].end, 50, START) == expected  # as the schedule asks: up to a window's end


def test_ticks_before_stops_at_the_first_partition_and_at_count():
    start = datetime(2026, 2, 25, tzinfo=timezone.utc)
    ticks = ticks_before("0 6 * * *", END, 1_000, start)
    assert ticks[0] == datetime(2026, 2, 25, 6, tzinfo=timezone.utc) and len(ticks) == 5
    assert len(ticks_before("* * * * *", END, 1_000, START)) == 1_000
    assert ticks_before("* * * * *", END, 3, START)[-1] == datetime(2026, 3, 1, 12, 6, tzinfo=timezone.utc)
