"""Helpers for the config tests: a copy of the fixture project per test, and error lookups."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ml_pipelines.config.errors import ConfigError
from ml_pipelines.config.loader import Project, load_project

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PROJECT_OK = FIXTURES / "project_ok"
FORECAST = "model_configs/forecast_daily.yml"
DAP = "model_configs/dap_testing.yaml"


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the `occurrence`-th line containing `needle`."""
    seen = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{needle!r} not in text")


class FixtureProject:
    def __init__(self, root: Path):
        self.root = root

    def path(self, rel: str) -> Path:
        return self.root / rel

    def read(self, rel: str) -> str:
        return self.path(rel).read_text()

    def write(self, rel: str, text: str | bytes) -> Path:
        target = self.path(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text)
        return target

    def edit(self, rel: str, *pairs: tuple[str, str]) -> str:
        """Replace each `old` (which must be present) by `new`; returns the new text."""
        text = self.read(rel)
        for old, new in pairs:
            assert old in text, f"{old!r} not in {rel}"
            text = text.replace(old, new, 1)
        self.write(rel, text)
        return text

    def remove(self, rel: str) -> None:
        target = self.path(rel)
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()

    def only(self, *configs: str) -> None:
        """Keep only these pipeline configs in model_configs/."""
        for p in self.path("model_configs").glob("*.y*ml"):
            if f"model_configs/{p.name}" not in configs and p.name != "variables.yml":
                p.unlink()

    def load(self, env: str = "LOCAL") -> Project:
        return load_project(self.root, env=env)


@pytest.fixture
def project(tmp_path: Path) -> FixtureProject:
    root = tmp_path / "project"
    shutil.copytree(PROJECT_OK, root)
    return FixtureProject(root)


def find_error(errors: list[ConfigError], key_part: str, *, contains: str = "") -> ConfigError:
    matches = [e for e in errors if key_part in e.key_path and contains in e.message]
    assert matches, f"no error with key {key_part!r} containing {contains!r} in:\n" + "\n".join(map(str, errors))
    return matches[0]


def assert_error(
    errors: list[ConfigError],
    *,
    file: str,
    line: int,
    key: str,
    contains: str = "",
) -> ConfigError:
    """An error exists naming `file` (relative to the project), `line` and `key` (exact key path)."""
    for error in errors:
        if error.key_path == key and contains in error.message:
            text = str(error)
            assert error.display_path == file, text
            assert error.line == line, text
            assert text.startswith(f"{file}:{line}: {key}: " if key else f"{file}:{line}: "), text
            return error
    raise AssertionError(f"no error {file}:{line}: {key}: ...{contains}... in:\n" + "\n".join(map(str, errors)))
