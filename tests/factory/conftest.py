"""Build the code location of a project the way definitions.py does, with LOCAL state in tmp."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dagster import instance_for_test

from ml_pipelines.config.loader import load_project
from ml_pipelines.config.variables import load_variables
from ml_pipelines.environment import build_executor, build_resources, settings_from_env
from ml_pipelines.factory import build_definitions

REPO = Path(__file__).resolve().parents[2]
PROJECT_OK = REPO / "tests" / "fixtures" / "project_ok"


def build_defs(project_dir: Path, home: Path, *, strict: bool = False):
    settings = settings_from_env(project_dir, "LOCAL")
    project = load_project(project_dir, env="LOCAL")
    variables = load_variables(project.paths.model_configs, "LOCAL")
    from dataclasses import replace

    settings = replace(settings, home=home, strict=strict)
    resources = build_resources(settings, variables.stages)
    return build_definitions(project, settings, resources, build_executor(settings, "ml_pipelines.definitions"))


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    target = tmp_path / "project"
    shutil.copytree(PROJECT_OK, target)
    return target


@pytest.fixture
def instance():
    """A real on-disk instance (schedule contexts need an instance reference)."""
    with instance_for_test() as inst:
        yield inst
