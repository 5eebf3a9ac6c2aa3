"""Shape variant `daily`: build(partitions_mode="daily"). See shapes_lib.py."""

from shapes_lib import build

defs = build(partitions_mode="daily")
