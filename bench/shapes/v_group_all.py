"""Shape variant `group_all`: build(grouping="all"). See shapes_lib.py."""

from shapes_lib import build

defs = build(grouping="all")
