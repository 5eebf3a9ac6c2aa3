"""Shape variant `realistic_direct_fth`: build(realistic=True, resources=True, sched_extras=True, construct="direct", gc_mode="freeze_threshold"). See shapes_lib.py."""

from shapes_lib import build

defs = build(realistic=True, resources=True, sched_extras=True, construct="direct", gc_mode="freeze_threshold")
