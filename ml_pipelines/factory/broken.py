"""Configs that fail validation stay visible: one asset per broken file, with a failing check."""

from __future__ import annotations

import re
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    Failure,
    MetadataValue,
    asset,
)

from ml_pipelines.config.errors import ConfigError

BROKEN_GROUP = "config_errors"
CHECK_NAME = "config_is_valid"


def broken_config_asset(config_file: Path, errors: list[ConfigError], project_dir: Path):
    try:
        shown = config_file.relative_to(project_dir)
    except ValueError:
        shown = config_file
    key = AssetKey([BROKEN_GROUP, re.sub(r"\W", "_", shown.as_posix())])
    lines = [str(error) for error in errors]
    text = "\n".join(lines)

    @asset(
        key=key,
        group_name=BROKEN_GROUP,
        description=f"{shown} does not validate; its pipelines are not loaded.\n\n```\n{text}\n```",
        metadata={"config_file": str(shown), "errors": MetadataValue.md("\n".join(f"- `{l}`" for l in lines))},
        check_specs=[AssetCheckSpec(CHECK_NAME, asset=key, description="The config file validates.")],
        kinds={"yaml"},
    )
    def _broken(context):
        yield AssetCheckResult(
            check_name=CHECK_NAME,
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            metadata={"errors": MetadataValue.md("\n".join(f"- `{l}`" for l in lines))},
        )
        raise Failure(description=f"{shown} does not validate:\n{text}")

    return _broken
