"""Shape variant `direct_gcoff`: build(construct="direct", gc_mode="disable"). See shapes_lib.py."""

from shapes_lib import build

defs = build(construct="direct", gc_mode="disable")
