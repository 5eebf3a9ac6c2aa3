"""Shape variant `direct_t5k`: build(construct="direct", gc_mode="threshold:5000,10,10"). See shapes_lib.py."""

from shapes_lib import build

defs = build(construct="direct", gc_mode="threshold:5000,10,10")
