"""Shape variant `sched_none`: build(schedules="none"). See shapes_lib.py."""

from shapes_lib import build

defs = build(schedules="none")
