"""Shape variant `tw_cron`: build(partitions_mode="tw_cron"). See shapes_lib.py."""

from shapes_lib import build

defs = build(partitions_mode="tw_cron")
