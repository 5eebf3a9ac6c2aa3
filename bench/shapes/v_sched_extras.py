"""Shape variant `sched_extras`: build(sched_extras=True). See shapes_lib.py."""

from shapes_lib import build

defs = build(sched_extras=True)
