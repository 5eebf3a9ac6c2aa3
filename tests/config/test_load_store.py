"""The load cache (LoadStore): results are reused only while every file they came from is unchanged."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from ml_pipelines.config import load_store
from ml_pipelines.config.load_store import LoadStore
from ml_pipelines.config.load_store_codec import CODECS
from ml_pipelines.config.loader import load_project
from ml_pipelines.config.session import LoadSession
from ml_pipelines.plan.versions import step_code_version
from tests.config.conftest import FORECAST, FixtureProject

FORECAST_ID = "demo_forecast_Daily"


def key(name: str) -> tuple[str, str]:
    """A key of a kind the cache keeps on disk (a digest: any text)."""
    return ("digest", name)


def store(file: Path) -> LoadStore:
    return LoadStore(file, CODECS)


def settle(root: Path) -> None:
    """Date every file a minute back, as if written long before the load."""
    past = time.time() - 60
    for path in root.rglob("*"):
        os.utime(path, (past, past))


def touch_later(path: Path) -> None:
    """Make an edit visible to the cache without waiting: a later, settled mtime."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


def edit_settled(project: FixtureProject, rel: str, *pairs: tuple[str, str]) -> None:
    project.edit(rel, *pairs)
    path = project.path(rel)
    past = time.time() - 30
    os.utime(path, (past, past))


# -- LoadStore itself ------------------------------------------------------------------------
def test_value_is_reused_until_its_file_changes(tmp_path):
    source = tmp_path / "a.txt"
    source.write_text("one")
    settle(tmp_path)
    cache_file = tmp_path / "cache" / "c.json"

    first = store(cache_file)
    assert first.memo(key("k"), [source], lambda: source.read_text()) == "one"
    first.save()

    second = store(cache_file)
    assert second.memo(key("k"), [source], lambda: "recomputed") == "one"
    assert (second.hits, second.misses) == (1, 0)

    source.write_text("two!")  # another size and mtime
    settle(tmp_path)
    third = store(cache_file)
    assert third.memo(key("k"), [source], lambda: source.read_text()) == "two!"
    assert third.misses == 1


def test_deleted_or_created_files_invalidate(tmp_path):
    present, absent = tmp_path / "present.txt", tmp_path / "absent.txt"
    present.write_text("x")
    settle(tmp_path)
    cache = store(tmp_path / "c.json")
    cache.put(key("k"), "value", [present, absent])  # worked out while `absent` did not exist
    cache.save()
    assert store(tmp_path / "c.json").get(key("k")) == "value"

    absent.write_text("now here")
    assert store(tmp_path / "c.json").get(key("k")) is None
    absent.unlink()
    present.unlink()
    assert store(tmp_path / "c.json").get(key("k")) is None


def test_recently_written_or_changing_files_are_not_cached(tmp_path):
    fresh = tmp_path / "fresh.txt"
    fresh.write_text("just written")
    cache = store(tmp_path / "c.json")
    cache.put(key("fresh"), "1", [fresh])  # could be rewritten within the same clock tick
    assert cache.get(key("fresh")) is None

    settle(tmp_path)
    moving = store(tmp_path / "c.json")
    moving.signature(fresh)  # taken before the read
    fresh.write_text("changed while being read")
    settle(tmp_path)
    moving.put(key("moving"), "2", [fresh])
    assert moving.get(key("moving")) is None


def test_save_writes_only_what_changed_and_drops_unused_entries(tmp_path):
    source = tmp_path / "a.txt"
    source.write_text("a")
    settle(tmp_path)
    path = tmp_path / "c.json"
    cache = store(path)
    cache.put(key("used"), "1", [source])
    cache.put(key("unused"), "2", [source])
    cache.save()

    again = store(path)
    assert again.get(key("used")) == "1"
    again.save()  # "unused" was not asked for: dropped
    assert [e[:2] for e in json.loads(path.read_text())["entries"]] == [list(key("used"))]

    before = path.stat().st_mtime_ns
    steady = store(path)
    assert steady.get(key("used")) == "1"
    steady.save()
    assert path.stat().st_mtime_ns == before  # nothing changed: nothing written


def test_corrupt_or_foreign_cache_is_ignored(tmp_path, monkeypatch, caplog):
    source = tmp_path / "a.txt"
    source.write_text("a")
    settle(tmp_path)
    path = tmp_path / "c.json"
    path.write_bytes(b"not json {")
    cache = store(path)
    assert cache.get(key("k")) is None
    cache.put(key("k"), "1", [source])
    cache.save()
    assert store(path).get(key("k")) == "1"

    monkeypatch.setattr(load_store, "product_fingerprint", lambda: "another product version")
    assert store(path).get(key("k")) is None


def test_unwritable_cache_dir_only_loses_the_speed_up(tmp_path, caplog):
    source = tmp_path / "a.txt"
    source.write_text("a")
    settle(tmp_path)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder should be")
    cache = store(blocker / "c.json")
    cache.put(key("k"), "1", [source])
    cache.save()  # logs, does not raise
    assert "could not write the load cache" in caplog.text


# -- through load_project --------------------------------------------------------------------
def load(project: FixtureProject, cache_dir: Path):
    session = LoadSession(LoadStore.for_project(cache_dir, project.root, CODECS))
    loaded = load_project(project.root, env="LOCAL", session=session)
    session.save()
    return loaded, session.store


def summary(loaded) -> tuple:
    return (
        [(p.pipeline_id, p.config.model_dump_json(), sorted(p.files)) for p in loaded.pipelines],
        [str(e) for e in loaded.errors],
    )


def test_a_reused_load_equals_a_fresh_one(project, tmp_path):
    settle(project.root)
    first, files = load(project, tmp_path / "cache")
    assert files.hits == 0 and first.pipelines
    second, files = load(project, tmp_path / "cache")
    assert files.misses == 0 and files.hits > 0
    assert summary(second) == summary(first) == summary(load_project(project.root, env="LOCAL"))


def test_edits_to_a_config_or_an_include_are_seen(project, tmp_path):
    settle(project.root)
    load(project, tmp_path / "cache")

    edit_settled(project, FORECAST, ('schema: "FORECASTS"', 'schema: "FORECASTS_V2"'))
    loaded, _ = load(project, tmp_path / "cache")
    assert loaded.pipeline(FORECAST_ID).config.schema_ == "FORECASTS_V2"

    edit_settled(project, "model_configs/common/snowflake_account.yml", ("", "# edited\n"))
    include = project.path("model_configs/common/snowflake_account.yml")
    touch_later(include)
    loaded, files = load(project, tmp_path / "cache")
    assert files.misses >= 2  # both configs include it (through snowflake_common_config.yml)
    assert summary(loaded) == summary(load_project(project.root, env="LOCAL"))


def test_a_file_broken_after_caching_is_reported(project, tmp_path):
    settle(project.root)
    load(project, tmp_path / "cache")

    notebook = project.path("Sagemaker_Models/Forecast/DailyForecast.ipynb")
    notebook.write_text("{ not json")
    settle(project.root)
    loaded, _ = load(project, tmp_path / "cache")
    assert any("DailyForecast.ipynb" in str(e) and "not a Jupyter notebook" in str(e) for e in loaded.errors)

    edit_settled(project, FORECAST, ('schema: "FORECASTS"', 'schema: ["not", "text"]'))
    loaded, files = load(project, tmp_path / "cache")
    assert any(e.key_path.endswith("schema") for e in loaded.errors)
    # the broken file is not cached: the next load reports the same errors afresh
    again, files = load(project, tmp_path / "cache")
    assert summary(again) == summary(loaded)


def test_code_versions_follow_edits_through_the_cache(project, tmp_path):
    # the image's files too (a fresh checkout's containers/ may be too recent to cache)
    shutil.copytree(Path(__file__).resolve().parents[2] / "containers", project.root / "containers")
    settle(project.root)
    notebook = project.path("Sagemaker_Models/Forecast/DailyForecast.ipynb")

    def version() -> tuple[str, int]:
        session = LoadSession(LoadStore.for_project(tmp_path / "cache", project.root, CODECS))
        loaded = load_project(project.root, env="LOCAL", session=session)
        result = step_code_version(
            loaded.pipeline(FORECAST_ID), "sagemaker_notebook_job_processing_script", loaded.paths, session
        )
        session.save()
        return result, session.store.misses

    before, _ = version()
    again, misses = version()
    assert again == before and misses == 0  # the digests came from the cache
    notebook.write_text(notebook.read_text().replace('"source": [', '"source": ["# edited\\n", ', 1))
    settle(project.root)
    assert version()[0] != before


def test_the_code_location_writes_its_cache_and_then_only_reads_it(tmp_path, monkeypatch):
    from ml_pipelines.environment import settings_from_env
    from ml_pipelines.location import build_code_location

    repo = Path(__file__).resolve().parents[2]
    root = tmp_path / "project"
    for folder in ("model_configs", "Sagemaker_Models", "Glue_Models", "Py_Models"):
        shutil.copytree(repo / folder, root / folder)
    settle(root)
    monkeypatch.setenv("ML_PIPELINES_PROJECT_DIR", str(root))
    monkeypatch.setenv("ML_PIPELINES_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ML_PIPELINES_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ML_PIPELINES_ENV", "LOCAL")
    first = build_code_location(settings_from_env(), "ml_pipelines.definitions")
    (cache,) = (tmp_path / "cache").glob("load-*.json")
    written = cache.stat().st_mtime_ns
    second = build_code_location(settings_from_env(), "ml_pipelines.definitions")
    assert cache.stat().st_mtime_ns == written  # every result reused, nothing new to write
    graph = second.resolve_asset_graph()
    assert graph.get_all_asset_keys() == first.resolve_asset_graph().get_all_asset_keys()
    assert {graph.get(k).code_version for k in graph.get_all_asset_keys()} == {
        first.resolve_asset_graph().get(k).code_version for k in graph.get_all_asset_keys()
    }


def test_a_result_of_a_kind_without_codec_does_not_rewrite_the_file(tmp_path):
    source = tmp_path / "a.txt"
    source.write_text("a")
    settle(tmp_path)
    file = tmp_path / "cache" / "load.json"
    first = store(file)
    first.memo(key(str(source)), [source], lambda: "digest-a")
    first.save()
    written = file.stat().st_mtime_ns
    second = store(file)
    assert second.memo(key(str(source)), [source], lambda: "recomputed") == "digest-a"
    second.memo(("no codec for this kind", str(source)), [source], lambda: object())
    second.save()
    assert file.stat().st_mtime_ns == written
