"""Shape variant `base`: build(). See shapes_lib.py."""

from shapes_lib import build

defs = build()
