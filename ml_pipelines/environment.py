"""The one place that decides the environment and builds what runs in it.

Each entry point (the code location in `definitions.py`, the CLI, tests) builds one
`Settings` with `settings_from_env` and passes it down; `build_resources` and
`build_executor` turn it into the step backends and the executor of the runs.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml_pipelines.config.schema import ENVIRONMENTS

if TYPE_CHECKING:
    from dagster import ExecutorDefinition

    from ml_pipelines.config.paths import ProjectPaths

# Steps of one run that may execute at the same time, unless ML_PIPELINES_MAX_PARALLEL_STEPS
# says otherwise: LOCAL steps share this machine's cores; AWS steps mostly wait on jobs.
DEFAULT_PARALLEL_STEPS = {"LOCAL": 2, "DEV": 8, "BETA": 8, "PROD": 8}


@dataclass(frozen=True)
class Settings:
    env: str  # LOCAL, DEV, BETA or PROD
    project_dir: Path  # holds model_configs/ and the model folders
    home: Path  # local state: storage mirror, venvs, warehouse
    strict: bool = False  # a broken config fails the code location load
    max_parallel_steps: int = 2  # steps of one run executing at once
    storage_dir: Path | None = None  # LOCAL's S3 mirror when not <home>/storage
    cache_dir: Path | None = None  # the load cache's folder (outside the project); None: none on disk
    pipeline_jobs: bool = True  # a job per pipeline (factory/jobs.py); off: schedules on the implicit asset job

    @property
    def storage_root(self) -> Path | None:
        """LOCAL's mirror of S3; None where steps use real S3."""
        if self.env != "LOCAL":
            return None
        return (self.storage_dir or self.home / "storage").resolve()

    @cached_property
    def paths(self) -> ProjectPaths:
        from ml_pipelines.config.paths import ProjectPaths

        return ProjectPaths.for_root(self.project_dir)


def _positive_int(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{name}={text!r} must be a whole number of at least 1")
    return int(text)


def settings_from_env(project_dir: str | Path | None = None, env: str | None = None) -> Settings:
    """Settings from the arguments, else ML_PIPELINES_* environment variables, else defaults."""
    from ml_pipelines.config.load_store import default_cache_dir
    from ml_pipelines.config.paths import project_root

    root = project_root(project_dir)
    env = (env or os.environ.get("ML_PIPELINES_ENV") or "LOCAL").upper()
    if env not in ENVIRONMENTS:
        raise ValueError(f"ML_PIPELINES_ENV={env!r} is not one of {', '.join(ENVIRONMENTS)}")
    home = Path(os.environ.get("ML_PIPELINES_HOME") or root / ".ml_pipelines").resolve()
    storage = os.environ.get("ML_PIPELINES_STORAGE_ROOT")
    cache = os.environ.get("ML_PIPELINES_CACHE_DIR", "").strip()
    return Settings(
        env=env,
        project_dir=root,
        home=home,
        strict=os.environ.get("ML_PIPELINES_STRICT", "").strip().lower() in ("1", "true", "yes"),
        max_parallel_steps=_positive_int("ML_PIPELINES_MAX_PARALLEL_STEPS", DEFAULT_PARALLEL_STEPS[env]),
        storage_dir=Path(storage) if storage else None,
        cache_dir=Path(cache).resolve() if cache else default_cache_dir(),
        pipeline_jobs=os.environ.get("ML_PIPELINES_PIPELINE_JOBS", "").strip().lower() not in ("0", "false", "no"),
    )


def build_executor(settings: Settings, code_location_module: str) -> ExecutorDefinition:
    """Steps run in their own processes, at most `max_parallel_steps` at once. The processes
    fork from a server that has already imported `code_location_module`, so a step does
    not pay for loading every pipeline again."""
    from dagster import multiprocess_executor

    # Named explicitly: without the key Dagster preloads nothing but itself.
    preload = {"preload_modules": [code_location_module]}
    return multiprocess_executor.configured(
        {"max_concurrent": settings.max_parallel_steps, "start_method": {"forkserver": preload}},
        name="ml_pipelines_steps",
    )


def build_resources(settings: Settings, stages: dict[str, str], kinds: Collection[str] = ()) -> dict[str, Any]:
    """Step backends for the environment, keyed as `steps.registry.RESOURCE_KEYS`. `kinds`: the
    step kinds the project's pipelines use (they decide which AWS settings are required)."""
    from ml_pipelines.alerts.notifier import build_notifier
    from ml_pipelines.local.python_script import CapturingPipesSubprocessClient, LocalPythonScripts

    pipes = CapturingPipesSubprocessClient()
    shared = {
        "pipes": pipes,
        # Python scripts run in the run worker's process tree in every environment.
        "python_scripts": LocalPythonScripts(home=str(settings.home), pipes=pipes),
        # Slack and e-mail where their settings are present, else the log (alerts/notifier.py).
        "notifier": build_notifier(settings),
    }
    if settings.env == "LOCAL":
        return _checked({**shared, **_local_backends(settings, stages, pipes)})
    return _checked({**shared, **_aws_backends(settings, kinds)})


def _local_backends(settings: Settings, stages: dict[str, str], pipes: Any) -> dict[str, Any]:
    from ml_pipelines.local.glue import LocalGlue
    from ml_pipelines.local.images import LocalContainerImages
    from ml_pipelines.local.notebook import LocalNotebooks
    from ml_pipelines.local.storage import LocalStorage
    from ml_pipelines.local.warehouse import LocalWarehouse

    home = str(settings.home)
    storage = LocalStorage(root=str(settings.storage_root))
    return {
        "storage": storage,
        "container_images": LocalContainerImages(home=home),
        "notebooks": LocalNotebooks(home=home, storage=storage),
        "glue": LocalGlue(home=home, storage=storage, pipes=pipes),
        "warehouse": LocalWarehouse(home=home, storage=storage, stages=dict(stages)),
    }


def _aws_backends(settings: Settings, kinds: Collection[str]) -> dict[str, Any]:
    """DEV, BETA, PROD: S3, CodeBuild/ECR, SageMaker Processing, Glue, Snowflake. Settings come
    from environment variables (aws/settings.py); missing ones fail the load, listed together."""
    from ml_pipelines.aws.glue import AwsGlueBackend
    from ml_pipelines.aws.images import CodeBuildImageBackend
    from ml_pipelines.aws.notebook import SageMakerNotebookBackend
    from ml_pipelines.aws.settings import aws_settings_from_env
    from ml_pipelines.aws.snowflake_sql import SnowflakeSqlBackend
    from ml_pipelines.aws.storage import S3Storage

    aws = aws_settings_from_env(settings.env, kinds)
    storage = S3Storage()
    return {
        "storage": storage,
        "container_images": CodeBuildImageBackend(
            storage=storage,
            ecr_repository=aws.ecr_repository,
            codebuild_project=aws.codebuild_project,
            context_bucket=aws.build_context_bucket,
        ),
        "notebooks": SageMakerNotebookBackend(
            storage=storage, role_arn=aws.sagemaker_role_arn, ecr_repository=aws.ecr_repository
        ),
        "glue": AwsGlueBackend(storage=storage, role_arn=aws.glue_role_arn, glue_version=aws.glue_version),
        "warehouse": SnowflakeSqlBackend(),
    }


def _checked(resources: dict[str, Any]) -> dict[str, Any]:
    """Every resource the step kinds need is bound, to an implementation of its interface."""
    from ml_pipelines.steps.registry import RESOURCE_KEYS

    for key, interface in RESOURCE_KEYS.items():
        if not isinstance(resources.get(key), interface):
            raise TypeError(f"resource {key!r} must be a {interface.__name__}, got {type(resources.get(key)).__name__}")
    return resources
