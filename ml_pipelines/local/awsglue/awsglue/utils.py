"""`getResolvedOptions` with Glue's semantics (argparse over `sys.argv[1:]`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from . import unsupported_module_attribute

_BOOKMARK_CHOICES = ("job-bookmark-enable", "job-bookmark-pause", "job-bookmark-disable")
# Arguments Glue itself may pass: optional, and a script may not ask for them.
_RESERVED = (
    "job-bookmark-option",
    "job-bookmark-from",
    "job-bookmark-to",
    "continuation-option",
    "encryption-type",
    "JOB_ID",
    "JOB_RUN_ID",
    "SECURITY_CONFIGURATION",
)
_TEMP_DIRS = ("TempDir", "RedshiftTempDir")


class GlueArgumentError(Exception):
    """A job argument asked for but not passed (Glue raises this too)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # raise instead of sys.exit, as Glue does
        raise GlueArgumentError(message)


def getResolvedOptions(args: Sequence[str], options: Sequence[str]) -> dict[str, Any]:  # noqa: N802
    """Return {name: value} for each `--name value` in `options`; a missing one is an error."""
    parser = _Parser()
    for name in _RESERVED:
        if name in options:
            raise RuntimeError(f"Using reserved arguments --{name}")
        parser.add_argument(
            f"--{name}", required=False, choices=_BOOKMARK_CHOICES if name == "job-bookmark-option" else None
        )
    for name in _TEMP_DIRS:
        parser.add_argument(f"--{name}", required=False)
    for name in options:
        if name not in _TEMP_DIRS:
            parser.add_argument(f"--{name}", required=True)
    parsed, _unknown = parser.parse_known_args(list(args)[1:])
    resolved = vars(parsed)
    resolved.pop("continuation_option", None)
    resolved["TempDir"] = resolved["TempDir"] or resolved["RedshiftTempDir"]
    resolved["RedshiftTempDir"] = resolved["RedshiftTempDir"] or resolved["TempDir"]
    resolved["job_bookmark_option"] = resolved["job_bookmark_option"] or "job-bookmark-disable"
    return resolved


def __getattr__(name: str) -> Any:
    raise unsupported_module_attribute(__name__, name)
