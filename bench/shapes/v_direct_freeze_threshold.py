"""Shape variant `direct_freeze_threshold`: build(construct="direct", gc_mode="freeze_threshold"). See shapes_lib.py."""

from shapes_lib import build

defs = build(construct="direct", gc_mode="freeze_threshold")
