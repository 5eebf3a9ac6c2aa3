"""Shape variant `sched_target`: build(schedules="target"). See shapes_lib.py."""

from shapes_lib import build

defs = build(schedules="target")
