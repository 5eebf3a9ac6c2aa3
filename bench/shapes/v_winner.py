"""Winning shape, factory-like: per pipeline one OpDefinition + AssetsDefinition(specs=...), per-pipeline
schedule on __ASSET_JOB, resources bound, GC thresholds raised for the process.

build(realistic=True, resources=True, sched_extras=True, construct="direct", gc_mode="threshold"); see shapes_lib.py."""

from shapes_lib import build

defs = build(realistic=True, resources=True, sched_extras=True, construct="direct", gc_mode="threshold")
