"""Micro-benchmark (CPU time): what validate_partitions pays per asset node, by partitions shape.

The workspace asset graph rebuilds a PartitionsDefinition from the node's snap on every
`node.partitions_def` access, so nothing is shared between nodes; this times
snap -> definition -> validate_partition_definition() and the parent mapping validation.
"""

import time
from datetime import datetime, timezone

from dagster import DailyPartitionsDefinition, TimeWindowPartitionsDefinition, TimeWindowPartitionMapping
from dagster._core.definitions.partitions.snap.snap import PartitionsSnap

N = 2000


def bench(label, make):
    part = make()
    snap = PartitionsSnap.from_def(part)
    t = time.process_time()
    for _ in range(N):
        snap.get_partitions_definition()
    t_build = (time.process_time() - t) / N * 1e3
    t = time.process_time()
    for _ in range(N):
        snap.get_partitions_definition().validate_partition_definition()
    t_val = (time.process_time() - t) / N * 1e3 - t_build
    mapping = TimeWindowPartitionMapping()
    t = time.process_time()
    for _ in range(N):
        mapping.validate_partition_mapping(snap.get_partitions_definition(), snap.get_partitions_definition())
    t_map = (time.process_time() - t) / N * 1e3 - 2 * t_build
    print(f"{label:55} build {t_build:.3f} ms  validate {t_val:.3f} ms  mapping {t_map:.3f} ms")


utc = timezone.utc
for start in (datetime(2024, 1, 5, tzinfo=utc), datetime(2020, 1, 5, tzinfo=utc)):
    y = start.year
    bench(f"tw '30 4 * * *' start {y} fmt %Y-%m-%d UTC", lambda: TimeWindowPartitionsDefinition(
        cron_schedule="30 4 * * *", start=start, fmt="%Y-%m-%d", timezone="UTC"))
    bench(f"tw '0 0 * * *' start {y} fmt %Y-%m-%d UTC", lambda: TimeWindowPartitionsDefinition(
        cron_schedule="0 0 * * *", start=start, fmt="%Y-%m-%d", timezone="UTC"))
    bench(f"daily hour 4 minute 30 start {y}", lambda: DailyPartitionsDefinition(
        start_date=start, hour_offset=4, minute_offset=30, timezone="UTC"))
    bench(f"tw '30 4 * * *' start {y} fmt %Y-%m-%d-%H:%M UTC", lambda: TimeWindowPartitionsDefinition(
        cron_schedule="30 4 * * *", start=start, fmt="%Y-%m-%d-%H:%M", timezone="UTC"))
    bench(f"tw '30 4 * * *' start {y} fmt %Y-%m-%d America/New_York", lambda: TimeWindowPartitionsDefinition(
        cron_schedule="30 4 * * *", start=start, fmt="%Y-%m-%d", timezone="America/New_York"))
    bench(f"tw '0 * * * *' hourly start {y}", lambda: TimeWindowPartitionsDefinition(
        cron_schedule="0 * * * *", start=start, fmt="%Y-%m-%d-%H:%M", timezone="UTC"))
    bench(f"tw '0 6 * * 1' weekly start {y}", lambda: TimeWindowPartitionsDefinition(
        cron_schedule="0 6 * * 1", start=start, fmt="%Y-%m-%d", timezone="UTC"))
    bench(f"tw '0 6 * * 1-5' weekdays start {y}", lambda: TimeWindowPartitionsDefinition(
        cron_schedule="0 6 * * 1-5", start=start, fmt="%Y-%m-%d", timezone="UTC"))


# Is the start on a cron tick? cron_string_iterator has a fast path when it is.
def aligned():
    print("\nstart aligned to the cron's first tick vs midnight (same partition keys):")
    for cron in ("30 4 * * *", "0 0 * * *", "55 22 * * *"):
        m, h = (int(x) for x in cron.split()[:2])
        mid = TimeWindowPartitionsDefinition(cron_schedule=cron, start=datetime(2024, 1, 5, tzinfo=utc),
                                             fmt="%Y-%m-%d", timezone="UTC")
        al = TimeWindowPartitionsDefinition(cron_schedule=cron, start=datetime(2024, 1, 5, h, m, tzinfo=utc),
                                            fmt="%Y-%m-%d", timezone="UTC")
        assert mid.get_partition_keys_between_indexes(0, 5) == al.get_partition_keys_between_indexes(0, 5), cron
        bench(f"{cron!r} start midnight", lambda: mid)
        bench(f"{cron!r} start at first tick", lambda: al)


aligned()
