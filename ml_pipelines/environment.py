"""The one place that decides the environment and builds the resources for it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml_pipelines.config.schema import ENVIRONMENTS


@dataclass(frozen=True)
class Settings:
    env: str  # LOCAL, DEV, BETA or PROD
    project_dir: Path  # holds model_configs/ and the model folders
    home: Path  # local state: storage mirror, venvs, warehouse
    strict: bool  # a broken config fails the code location load

    @property
    def storage_root(self) -> Path | None:
        """LOCAL's mirror of S3; None where steps use real S3."""
        if self.env != "LOCAL":
            return None
        return Path(os.environ.get("ML_PIPELINES_STORAGE_ROOT") or self.home / "storage").resolve()


def settings_from_env(project_dir: str | Path | None = None, env: str | None = None) -> Settings:
    from ml_pipelines.config.paths import project_root

    root = project_root(project_dir)
    env = (env or os.environ.get("ML_PIPELINES_ENV") or "LOCAL").upper()
    if env not in ENVIRONMENTS:
        raise ValueError(f"ML_PIPELINES_ENV={env!r} is not one of {', '.join(ENVIRONMENTS)}")
    home = Path(os.environ.get("ML_PIPELINES_HOME") or root / ".ml_pipelines").resolve()
    strict = os.environ.get("ML_PIPELINES_STRICT", "").strip().lower() in ("1", "true", "yes")
    return Settings(env=env, project_dir=root, home=home, strict=strict)


def build_resources(settings: Settings, stages: dict[str, str]) -> dict[str, Any]:
    """Step backends for the environment, keyed as ml_pipelines.steps.RESOURCE_KEYS."""
    if settings.env != "LOCAL":
        raise ValueError(
            f"ML_PIPELINES_ENV={settings.env}: the AWS backends (SageMaker, Glue, CodeBuild/ECR, S3, "
            "Snowflake) are not part of this version yet; run with ML_PIPELINES_ENV=LOCAL"
        )
    from ml_pipelines.local.glue import LocalGlue
    from ml_pipelines.local.images import LocalContainerImages
    from ml_pipelines.local.notebook import LocalNotebooks
    from ml_pipelines.local.python_script import LocalPythonScripts
    from ml_pipelines.local.storage import LocalStorage
    from ml_pipelines.local.warehouse import LocalWarehouse

    home, storage = str(settings.home), str(settings.storage_root)
    return {
        "storage": LocalStorage(root=storage),
        "container_images": LocalContainerImages(home=home),
        "notebooks": LocalNotebooks(home=home, storage_root=storage),
        "glue": LocalGlue(home=home, storage_root=storage),
        "python_scripts": LocalPythonScripts(home=home),
        "warehouse": LocalWarehouse(home=home, storage_root=storage, stages=dict(stages)),
    }
