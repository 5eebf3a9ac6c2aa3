"""Shape variant `base_fth`: build(gc_mode="freeze_threshold"). See shapes_lib.py."""

from shapes_lib import build

defs = build(gc_mode="freeze_threshold")
