"""Shape variant `resources`: build(resources=True). See shapes_lib.py."""

from shapes_lib import build

defs = build(resources=True)
