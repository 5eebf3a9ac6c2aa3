"""Winner without per-asset tags and with less per-asset metadata.

build(realistic="lean", resources=True, sched_extras=True, construct="direct", gc_mode="threshold"); see shapes_lib.py."""

from shapes_lib import build

defs = build(realistic="lean", resources=True, sched_extras=True, construct="direct", gc_mode="threshold")
