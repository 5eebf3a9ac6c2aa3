"""Shape variant `group_cron_direct`: build(grouping="cron", construct="direct"). See shapes_lib.py."""

from shapes_lib import build

defs = build(grouping="cron", construct="direct")
