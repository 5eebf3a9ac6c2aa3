"""Shape variant `realistic_direct`: build(realistic=True, resources=True, sched_extras=True, construct="direct"). See shapes_lib.py."""

from shapes_lib import build

defs = build(realistic=True, resources=True, sched_extras=True, construct="direct")
