"""Shape variant `base_threshold`: build(gc_mode="threshold"). See shapes_lib.py."""

from shapes_lib import build

defs = build(gc_mode="threshold")
