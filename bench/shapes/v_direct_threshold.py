"""Shape variant `direct_threshold`: build(construct="direct", gc_mode="threshold"). See shapes_lib.py."""

from shapes_lib import build

defs = build(construct="direct", gc_mode="threshold")
