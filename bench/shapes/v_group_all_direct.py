"""Shape variant `group_all_direct`: build(grouping="all", construct="direct"). See shapes_lib.py."""

from shapes_lib import build

defs = build(grouping="all", construct="direct")
