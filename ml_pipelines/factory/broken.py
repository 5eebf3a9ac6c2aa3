"""Configs that fail validation stay visible: one asset per broken file, with a failing check."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
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


def _shown(config_file: Path, project_dir: Path) -> Path:
    try:
        return config_file.relative_to(project_dir)
    except ValueError:
        return config_file


def broken_config_names(config_files: list[Path], project_dir: Path) -> dict[Path, str]:
    """The asset name of each broken file: its path with non-word characters as `_`; when
    names collide that way (`team-a.yml`, `team_a.yml`), each colliding one gets a short
    hash of its path, so every file keeps its own asset whatever the others are."""
    plain = {f: re.sub(r"\W", "_", _shown(f, project_dir).as_posix()) for f in config_files}
    counts = Counter(plain.values())
    return {
        f: name
        if counts[name] == 1
        else f"{name}_{hashlib.sha256(_shown(f, project_dir).as_posix().encode()).hexdigest()[:8]}"
        for f, name in plain.items()
    }


def broken_config_asset(config_file: Path, errors: list[ConfigError], project_dir: Path, name: str | None = None):
    """The failing asset of a broken file; `name`: its asset name (`broken_config_names`)."""
    shown = _shown(config_file, project_dir)
    key = AssetKey([BROKEN_GROUP, name or broken_config_names([config_file], project_dir)[config_file]])
    lines = [str(error) for error in errors]
    text = "\n".join(lines)

    @asset(
        key=key,
        group_name=BROKEN_GROUP,
        description=(
            f"{shown} has errors; a pipeline with errors (each of the file's, for an error of the file "
            f"itself) is not loaded.\n\n```\n{text}\n```"
        ),
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
