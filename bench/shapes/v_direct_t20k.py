"""Shape variant `direct_t20k`: build(construct="direct", gc_mode="threshold:20000,20,20"). See shapes_lib.py."""

from shapes_lib import build

defs = build(construct="direct", gc_mode="threshold:20000,20,20")
