"""The winning shape without the GC threshold change.

build(realistic=True, resources=True, sched_extras=True, construct="direct"); see shapes_lib.py."""

from shapes_lib import build

defs = build(realistic=True, resources=True, sched_extras=True, construct="direct")
