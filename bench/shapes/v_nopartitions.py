"""Shape variant `nopartitions`: build(partitions_mode="none"). See shapes_lib.py."""

from shapes_lib import build

defs = build(partitions_mode="none")
