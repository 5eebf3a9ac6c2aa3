"""Issue 10, item 1: the load cache must never run code from its file, and must not trust a
cache others could have written.

The old cache was `<ML_PIPELINES_HOME>/cache/load-<hash>.pickle`, unpickled before any
check, with the home inside the project by default: a pickle committed into a models repo
ran code in every process that loaded the code location.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from ml_pipelines.config import load_store
from ml_pipelines.config.load_store import LoadStore
from ml_pipelines.config.load_store_codec import CODECS
from ml_pipelines.config.loader import load_project
from ml_pipelines.config.session import LoadSession
from ml_pipelines.environment import settings_from_env
from ml_pipelines.location import build_code_location

REPO = Path(__file__).resolve().parents[2]
PROJECT_OK = REPO / "tests" / "fixtures" / "project_ok"
MARKER_ENV = "ML_PIPELINES_TEST_MARKER"


class _Payload:
    """Unpickling this writes the marker file: what an attacker's pickle would run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def _settled_project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(PROJECT_OK, root)
    past = time.time() - 60
    for path in root.rglob("*"):
        os.utime(path, (past, past))
    return root


def _project_hash(root: Path) -> str:
    return hashlib.sha256(os.fspath(root.resolve()).encode()).hexdigest()[:16]


def _plant_pickles(root: Path, cache_dir: Path, marker: Path) -> None:
    """The malicious pickle where the old code read its cache (the default home inside the
    project) and at the new cache's own name in its folder."""
    payload = pickle.dumps({"fingerprint": load_store.product_fingerprint(), "entries": _Payload(marker)})
    name = _project_hash(root)
    for file in (
        root / ".ml_pipelines" / "cache" / f"load-{name}.pickle",
        cache_dir / f"load-{name}.pickle",
        cache_dir / f"load-{name}.json",
    ):
        file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        file.write_bytes(payload)


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A clean environment: no home or cache set, XDG_CACHE_HOME in tmp."""
    for name in ("ML_PIPELINES_HOME", "ML_PIPELINES_CACHE_DIR", "ML_PIPELINES_STORAGE_ROOT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("ML_PIPELINES_ENV", "LOCAL")
    return tmp_path


def test_a_planted_pickle_never_runs_when_the_code_location_is_built(env):
    root = _settled_project(env)
    marker = env / "marker"
    _plant_pickles(root, env / "xdg" / "ml-pipelines", marker)
    defs = build_code_location(settings_from_env(root), "ml_pipelines.definitions")
    assert not marker.exists()
    assert defs.resolve_asset_graph().get_all_asset_keys()  # the load itself went on


@pytest.mark.parametrize(
    "command",
    [
        ["-m", "dagster", "definitions", "validate", "-m", "ml_pipelines.definitions"],
        ["-m", "ml_pipelines.cli", "validate"],
    ],
    ids=["dagster definitions validate", "ml-pipelines validate"],
)
def test_a_planted_pickle_never_runs_in_validate(env, command):
    root = _settled_project(env)
    marker = env / "marker"
    _plant_pickles(root, env / "xdg" / "ml-pipelines", marker)
    dagster_home = env / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    run_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "ML_PIPELINES_PROJECT_DIR": str(root),
        "DAGSTER_HOME": str(dagster_home),
    }
    result = subprocess.run([sys.executable, *command], env=run_env, cwd=root, capture_output=True, text=True)
    assert result.returncode in (0, 1), result.stdout + result.stderr
    assert not marker.exists()


# -- who may have written the cache ----------------------------------------------------------
def _load(root: Path, cache_dir: Path):
    session = LoadSession(LoadStore.for_project(cache_dir, root, CODECS))
    project = load_project(root, env="LOCAL", session=session)
    session.save()
    return project, session.store


def _summary(project) -> tuple:
    return (
        [(p.pipeline_id, p.config.model_dump_json(), sorted(p.files), p.line) for p in project.pipelines],
        [str(e) for e in project.errors],
    )


def _tampered(root: Path, cache_dir: Path) -> Path:
    """A valid cache whose every config now says owner "mallory": reused, it would show."""
    _load(root, cache_dir)
    (file,) = cache_dir.glob("load-*.json")
    file.write_text(file.read_text().replace('"owner":"', '"owner":"mallory'))
    assert "mallory" in file.read_text()
    return file


def _owners(project) -> set[str]:
    return {p.config.default_args.owner for p in project.pipelines}


@pytest.mark.parametrize("target", ["file", "folder"])
def test_a_cache_others_can_write_is_ignored_with_a_warning(env, caplog, target):
    root = _settled_project(env)
    cache_dir = env / "cache"
    file = _tampered(root, cache_dir)
    (file if target == "file" else cache_dir).chmod(0o666 if target == "file" else 0o777)
    with caplog.at_level(logging.WARNING, logger="ml_pipelines"):
        project, store = _load(root, cache_dir)
    assert not any("mallory" in owner for owner in _owners(project))
    assert store.hits == 0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "load cache" in r.getMessage()]
    assert len(warnings) == 1 and "writable by others" in warnings[0].getMessage()
    if target == "file":  # rewritten, private again
        assert file.stat().st_mode & 0o077 == 0 and "mallory" not in file.read_text()


def test_a_cache_owned_by_someone_else_is_ignored(env, caplog, monkeypatch):
    root = _settled_project(env)
    cache_dir = env / "cache"
    _tampered(root, cache_dir)
    real_uid = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: real_uid + 1)  # the files are now another user's
    with caplog.at_level(logging.WARNING, logger="ml_pipelines"):
        project, store = _load(root, cache_dir)
    assert store.hits == 0 and not any("mallory" in owner for owner in _owners(project))
    assert "not by the current user" in caplog.text


def test_a_symlinked_cache_is_ignored(env, caplog):
    root = _settled_project(env)
    cache_dir = env / "cache"
    file = _tampered(root, cache_dir)
    elsewhere = env / "elsewhere.json"
    file.rename(elsewhere)
    file.symlink_to(elsewhere)
    with caplog.at_level(logging.WARNING, logger="ml_pipelines"):
        project, store = _load(root, cache_dir)
    assert store.hits == 0 and not any("mallory" in owner for owner in _owners(project))


@pytest.mark.parametrize(
    "junk",
    [b"", b"{", b"\x80\x04not json", b"[]", b'{"format": 1}', None],
    ids=["empty", "truncated", "binary", "a list", "old format", "cut in half"],
)
def test_a_junk_cache_is_a_miss_not_a_crash(env, junk):
    root = _settled_project(env)
    cache_dir = env / "cache"
    cold, _ = _load(root, cache_dir)
    (file,) = cache_dir.glob("load-*.json")
    text = file.read_bytes()
    file.write_bytes(text[: len(text) // 2] if junk is None else junk)
    again, store = _load(root, cache_dir)
    assert store.hits == 0 and _summary(again) == _summary(cold)


def test_entries_of_the_wrong_shape_are_misses(env):
    root = _settled_project(env)
    cache_dir = env / "cache"
    cold, _ = _load(root, cache_dir)
    (file,) = cache_dir.glob("load-*.json")
    payload = json.loads(file.read_text())
    for entry in payload["entries"]:
        entry[3] = {"positions": [[99, "x", None, None]]} if entry[0] == "parsed" else {"__reduce__": [1, 2]}
    file.write_text(json.dumps(payload))
    again, store = _load(root, cache_dir)
    assert store.hits == 0 and _summary(again) == _summary(cold)


def test_a_valid_cache_is_reused_and_equals_a_cold_load(env):
    root = _settled_project(env)
    cache_dir = env / "cache"
    cold, first = _load(root, cache_dir)
    assert first.hits == 0 and first.skipped == 0  # every kind of result was written
    (file,) = cache_dir.glob("load-*.json")
    kinds = {entry[0] for entry in json.loads(file.read_text())["entries"]}
    assert {"parsed", "parameter file", "sql file", "notebook problems"} <= kinds
    warm, store = _load(root, cache_dir)
    assert store.misses == 0 and store.hits > 0
    assert _summary(warm) == _summary(cold) == _summary(load_project(root, env="LOCAL"))


def test_the_code_location_from_a_warm_cache_equals_a_cold_one(env):
    root = _settled_project(env)
    settings = settings_from_env(root)

    def shape(defs):
        graph = defs.resolve_asset_graph()
        return {k: (graph.get(k).code_version, graph.get(k).description) for k in graph.get_all_asset_keys()}

    cold = shape(build_code_location(replace(settings, cache_dir=None), "ml_pipelines.definitions"))
    build_code_location(settings, "ml_pipelines.definitions")
    (file,) = settings.cache_dir.glob("load-*.json")
    written = file.stat().st_mtime_ns
    assert shape(build_code_location(settings, "ml_pipelines.definitions")) == cold
    assert file.stat().st_mtime_ns == written  # all reused


# -- where the cache lives -------------------------------------------------------------------
def test_the_cache_lives_outside_the_project(env, monkeypatch):
    root = _settled_project(env)
    build_code_location(settings_from_env(root), "ml_pipelines.definitions")
    assert not list(root.rglob("load-*"))
    assert list((env / "xdg" / "ml-pipelines").glob("load-*.json"))

    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(env / "user"))
    assert settings_from_env(root).cache_dir == env / "user" / ".cache" / "ml-pipelines"

    monkeypatch.setenv("ML_PIPELINES_CACHE_DIR", str(env / "chosen"))
    build_code_location(settings_from_env(root), "ml_pipelines.definitions")
    assert list((env / "chosen").glob("load-*.json"))
    assert not list(root.rglob("load-*"))
