"""Shape variant `direct_shared_fn`: build(construct="direct_shared_fn"). See shapes_lib.py."""

from shapes_lib import build

defs = build(construct="direct_shared_fn")
