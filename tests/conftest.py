"""Suite-wide: the load cache of every test (and of every process a test starts) goes to a
folder of this session, never to the user's ~/.cache."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _private_load_cache(tmp_path_factory: pytest.TempPathFactory):
    previous = os.environ.get("ML_PIPELINES_CACHE_DIR")
    os.environ["ML_PIPELINES_CACHE_DIR"] = str(tmp_path_factory.mktemp("load-cache"))
    yield
    if previous is None:
        os.environ.pop("ML_PIPELINES_CACHE_DIR", None)
    else:
        os.environ["ML_PIPELINES_CACHE_DIR"] = previous
