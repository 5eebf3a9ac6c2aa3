"""Shape variant `direct_freeze`: build(construct="direct", gc_mode="freeze"). See shapes_lib.py."""

from shapes_lib import build

defs = build(construct="direct", gc_mode="freeze")
