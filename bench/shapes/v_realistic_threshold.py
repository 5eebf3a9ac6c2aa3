"""Factory-like multi_asset per pipeline (today's factory shape) with GC thresholds raised.

build(realistic=True, resources=True, sched_extras=True, gc_mode="threshold"); see shapes_lib.py."""

from shapes_lib import build

defs = build(realistic=True, resources=True, sched_extras=True, gc_mode="threshold")
