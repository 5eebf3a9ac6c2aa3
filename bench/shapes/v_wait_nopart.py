"""Shape variant `wait_nopart`: build(wait="nopart"). See shapes_lib.py."""

from shapes_lib import build

defs = build(wait="nopart")
