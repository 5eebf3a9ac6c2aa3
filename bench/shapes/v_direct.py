"""Shape variant `direct`: build(construct="direct"). See shapes_lib.py."""

from shapes_lib import build

defs = build(construct="direct")
