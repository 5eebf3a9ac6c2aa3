"""Winner, but one AssetsDefinition per cron holding all its pipelines (loses per-pipeline op settings).

build(realistic=True, resources=True, sched_extras=True, construct="direct", grouping="cron", gc_mode="threshold"); see shapes_lib.py."""

from shapes_lib import build

defs = build(realistic=True, resources=True, sched_extras=True, construct="direct", grouping="cron", gc_mode="threshold")
