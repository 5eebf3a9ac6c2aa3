"""Shape variant `group_all_direct_fth`: build(grouping="all", construct="direct", gc_mode="freeze_threshold"). See shapes_lib.py."""

from shapes_lib import build

defs = build(grouping="all", construct="direct", gc_mode="freeze_threshold")
