"""Build the code location of a project the way definitions.py does, with LOCAL state in tmp."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from dagster import instance_for_test

from ml_pipelines.environment import settings_from_env
from ml_pipelines.location import build_code_location

REPO = Path(__file__).resolve().parents[2]
PROJECT_OK = REPO / "tests" / "fixtures" / "project_ok"


def build_defs(project_dir: Path, home: Path, *, strict: bool = False):
    """The code location as definitions.py builds it, with LOCAL state under `home`."""
    settings = replace(settings_from_env(project_dir, "LOCAL"), home=home, strict=strict)
    return build_code_location(settings, "ml_pipelines.definitions")


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
