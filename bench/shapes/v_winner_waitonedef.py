"""Winner with all (partitioned) external waits in a single AssetsDefinition(specs=...).

build(realistic=True, resources=True, sched_extras=True, construct="direct", gc_mode="threshold", wait="onedef"); see shapes_lib.py."""

from shapes_lib import build

defs = build(realistic=True, resources=True, sched_extras=True, construct="direct", gc_mode="threshold", wait="onedef")
