"""The environment of Dagster processes a test starts (`dagster asset materialize`, the daemon):
an instance folder of their own and the project to load."""

from __future__ import annotations

import os
from pathlib import Path


def dagster_env(root: Path, project: Path, env: str = "LOCAL", **extra: str) -> dict[str, str]:
    """os.environ with DAGSTER_HOME = `<root>/dagster_home` (created, telemetry off), the project,
    LOCAL state under `<root>/home` and a broken config failing the load; `extra` on top."""
    dagster_home = root / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    values = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "ML_PIPELINES_PROJECT_DIR": str(project),
        "ML_PIPELINES_HOME": str(root / "home"),
        "ML_PIPELINES_ENV": env,
        "ML_PIPELINES_STRICT": "1",
        **extra,
    }
    values.pop("ML_PIPELINES_STORAGE_ROOT", None)  # LOCAL storage under the home
    return values
