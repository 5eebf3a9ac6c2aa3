"""Shape variant `group_part_direct_fth`: build(grouping="partitions", construct="direct", gc_mode="freeze_threshold"). See shapes_lib.py."""

from shapes_lib import build

defs = build(grouping="partitions", construct="direct", gc_mode="freeze_threshold")
