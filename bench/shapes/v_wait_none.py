"""Shape variant `wait_none`: build(wait="none"). See shapes_lib.py."""

from shapes_lib import build

defs = build(wait="none")
