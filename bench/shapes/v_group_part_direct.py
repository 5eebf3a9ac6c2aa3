"""Shape variant `group_part_direct`: build(grouping="partitions", construct="direct"). See shapes_lib.py."""

from shapes_lib import build

defs = build(grouping="partitions", construct="direct")
