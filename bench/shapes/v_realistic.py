"""Shape variant `realistic`: build(realistic=True, resources=True, sched_extras=True). See shapes_lib.py."""

from shapes_lib import build

defs = build(realistic=True, resources=True, sched_extras=True)
