"""The image a notebook runs in and its files, taken from what `config.paths` resolved.

A notebook runs in the image of the container-image step among its direct upstream
steps, else the pipeline's first one (`config.paths.container_step_for`); with none, in
the default image: `python3` with the model's `requirements.txt` if present
(`config.paths.default_image_files`). The Dockerfile is `containers/<kernel>/Dockerfile`.
Both the image plan and the code versions read the image from here.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ml_pipelines.config.paths import DEFAULT_IMAGE_STEP, container_step_for, default_image_files
from ml_pipelines.config.schema import ContainerImageStep

if TYPE_CHECKING:
    from ml_pipelines.config.loader import LoadedPipeline
    from ml_pipelines.config.paths import ProjectPaths


@dataclass(frozen=True)
class ImageFiles:
    step_name: str  # the container-image step; without one, the step asked about (or the default name)
    kernel: str
    model_dir: Path
    requirements_file: Path | None
    dockerfile: Path | None


def _image_step_for(pipeline: LoadedPipeline, step_name: str | None) -> ContainerImageStep | None:
    """The container-image step named `step_name`, the one the step `step_name` runs in,
    or (no `step_name`) the pipeline's first one."""
    if step_name is None:
        return next((t for t in pipeline.config.tasks if isinstance(t, ContainerImageStep)), None)
    step = pipeline.config.step(step_name)
    if isinstance(step, ContainerImageStep):
        return step
    return container_step_for(pipeline.config, step)


def image_files(pipeline: LoadedPipeline, paths: ProjectPaths, step_name: str | None = None) -> ImageFiles:
    """The image of the step `step_name` (see `_image_step_for`) and its files."""
    image = _image_step_for(pipeline, step_name)
    if image is None:
        files = default_image_files(paths, pipeline.config)
        kernel, name = DEFAULT_IMAGE_STEP.kernel, step_name or DEFAULT_IMAGE_STEP.name
    else:
        files = pipeline.files[image.name]
        kernel, name = image.kernel, image.name
    model_name = pipeline.config.model_name
    default_dir = Path(paths.sagemaker_models) / model_name if model_name else Path(paths.sagemaker_models)
    return ImageFiles(
        step_name=name,
        kernel=kernel,
        model_dir=files.model_dir if files.model_dir is not None else default_dir,
        requirements_file=files.requirements_file,
        dockerfile=files.dockerfile,
    )


# What every image's build context holds besides the Dockerfile's own COPY sources.
CONTEXT_FILES = ("Dockerfile", "requirements.txt")


def dockerfile_copies(dockerfile: Path) -> dict[str, Path | None]:
    """The files the Dockerfile COPYs or ADDs from its build context (not `--from=` stages),
    other than CONTEXT_FILES, by name: found beside it, then in `containers/`; None when
    neither has it. Part of the image: its content counts in the image's tag."""
    text = re.sub(r"\\\r?\n", " ", Path(dockerfile).read_text(encoding="utf-8", errors="replace"))
    found: dict[str, Path | None] = {}
    search = [Path(dockerfile).parent, Path(dockerfile).parent.parent]  # containers/<kernel>/, containers/
    for line in text.splitlines():
        words = line.strip().split(None, 1)
        if len(words) < 2 or words[0].upper() not in ("COPY", "ADD"):
            continue
        rest = words[1].strip()
        try:
            args = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        except ValueError:
            continue
        if not isinstance(args, list) or any(str(a).startswith("--from") for a in args):
            continue
        for source in [str(a) for a in args if not str(a).startswith("--")][:-1]:
            name = source.removeprefix("./")
            if name not in CONTEXT_FILES and name not in found:
                found[name] = next((d / name for d in search if (d / name).is_file()), None)
    return found
