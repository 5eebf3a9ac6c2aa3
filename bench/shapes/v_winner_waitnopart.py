"""Winner with unpartitioned external waits.

build(realistic=True, resources=True, sched_extras=True, construct="direct", gc_mode="threshold", wait="nopart"); see shapes_lib.py."""

from shapes_lib import build

defs = build(realistic=True, resources=True, sched_extras=True, construct="direct", gc_mode="threshold", wait="nopart")
