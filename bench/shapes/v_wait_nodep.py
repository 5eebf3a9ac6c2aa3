"""Shape variant `wait_nodep`: build(wait="nodep"). See shapes_lib.py."""

from shapes_lib import build

defs = build(wait="nodep")
