"""LOCAL container images: a reusable venv + Jupyter kernel instead of an ECR image."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pydantic import Field

from ml_pipelines.local.envs import ensure_python_env
from ml_pipelines.plan.model import ContainerImagePlan
from ml_pipelines.steps import ContainerImageBackend, StepOutcome


def read_requirements(requirements_file: Path | None) -> list[str]:
    """Requirement lines of a requirements file, without blanks and comments."""
    if requirements_file is None:
        return []
    lines = (line.split("#", 1)[0].strip() for line in Path(requirements_file).read_text().splitlines())
    return [line for line in lines if line]


class LocalContainerImages(ContainerImageBackend):
    """Builds (or reuses) the step's Python env under `<home>/envs/`."""

    home: str = Field(description="LOCAL state directory, e.g. <project>/.ml_pipelines.")

    def build(self, context: Any, plan: ContainerImagePlan) -> StepOutcome:
        start = time.monotonic()
        env = ensure_python_env(Path(self.home), plan.kernel, plan.requirements_file, context.log)
        duration = round(time.monotonic() - start, 3)
        context.log.info(f"Python env {env.path} {'reused' if env.reused else 'built'} in {duration}s")
        return StepOutcome(
            metadata={
                "status": "reused" if env.reused else "built",
                "env_path": str(env.path),
                "kernel_name": env.kernel_name,
                "content_hash": env.content_hash,
                "duration_s": duration,
                "requirements": read_requirements(plan.requirements_file),
            }
        )
