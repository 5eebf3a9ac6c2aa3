"""One load session: what one project load works out once, and what earlier loads kept.

Generated projects share one notebook, parameter file, SQL file, model folder and
`!include` between hundreds of pipelines. A `LoadSession` belongs to one load:
`loader.load_project` makes one (or takes the caller's, who can pass it on to code
versions and asset descriptions of the same load and `save` it at the end). It holds

- `yaml` (`YamlMemo`): included files read and composed once;
- `fs` (`FsMemo`): paths stat'ed, resolved and listed once;
- `once(key, compute)`: any other result worked out once per load;
- `from_file(kind, path, compute)`: a result worked out from one file, once per load and,
  through `store` (the load cache, `LoadStore`), reused from earlier loads while the file
  is unchanged.

A session treats the files as unchanging: the next load, with a new session, sees edited
files afresh. Several loads may share one session, for different environments (the CLI
validates LOCAL, DEV, BETA and PROD with one): a key of `once` or a kind of `from_file`
whose result depends on the environment or the pipeline variables must include them
(`from_file` results are also kept across processes: keep those to what follows from the
file alone).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from ml_pipelines.config.load_store import LoadStore
from ml_pipelines.config.paths import FsMemo
from ml_pipelines.config.yaml_loader import YamlMemo

T = TypeVar("T")


class LoadSession:
    """The memo of one project load, and the load cache it reads and saves."""

    def __init__(self, store: LoadStore | None = None) -> None:
        self.store = store if store is not None else LoadStore()  # default: this process only
        self.yaml = YamlMemo()
        self.fs = FsMemo()
        self._once: dict[Hashable, Any] = {}
        self._from_file: dict[tuple[str, str], Any] = {}

    def once(self, key: Hashable, compute: Callable[[], T]) -> T:
        """`compute()`, worked out the first time `key` is asked for in this load."""
        try:
            return self._once[key]
        except KeyError:
            value = self._once[key] = compute()
            return value

    def from_file(self, kind: str, path: str | os.PathLike, compute: Callable[[], T]) -> T:
        """`compute()`, the `kind` of result worked out from the file at `path`: once per
        load, and kept in the store against the file's signature."""
        key = (kind, os.fspath(path))
        try:
            return self._from_file[key]
        except KeyError:
            value = self._from_file[key] = self.store.memo(key, [key[1]], compute)
            return value

    def save(self) -> None:
        """Keep what this load worked out for the next one (see `LoadStore.save`)."""
        self.store.save()
