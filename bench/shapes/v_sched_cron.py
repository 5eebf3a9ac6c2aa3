"""Shape variant `sched_cron`: build(schedules="cron"). See shapes_lib.py."""

from shapes_lib import build

defs = build(schedules="cron")
