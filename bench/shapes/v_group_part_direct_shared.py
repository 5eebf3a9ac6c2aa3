"""Shape variant `group_part_direct_shared`: build(grouping="partitions", construct="direct_shared_fn"). See shapes_lib.py."""

from shapes_lib import build

defs = build(grouping="partitions", construct="direct_shared_fn")
