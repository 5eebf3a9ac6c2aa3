"""Fixtures shared by the LOCAL backend tests."""

from collections.abc import Iterator

import pytest
from dagster import DagsterInstance


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterInstance]:
    """An ephemeral instance per module, with DAGSTER_HOME in tmp."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(tmp_path_factory.mktemp("dagster_home")))
        with DagsterInstance.ephemeral() as inst:
            yield inst
