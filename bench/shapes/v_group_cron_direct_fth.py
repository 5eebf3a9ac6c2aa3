"""Shape variant `group_cron_direct_fth`: build(grouping="cron", construct="direct", gc_mode="freeze_threshold"). See shapes_lib.py."""

from shapes_lib import build

defs = build(grouping="cron", construct="direct", gc_mode="freeze_threshold")
