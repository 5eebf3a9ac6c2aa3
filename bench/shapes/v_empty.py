"""Floor: an empty Definitions (import dagster + CLI + workspace overhead)."""

from dagster import Definitions

defs = Definitions()
