"""Shape variant `group_part`: build(grouping="partitions"). See shapes_lib.py."""

from shapes_lib import build

defs = build(grouping="partitions")
