"""Shape variant `base_freeze`: build(gc_mode="freeze"). See shapes_lib.py."""

from shapes_lib import build

defs = build(gc_mode="freeze")
