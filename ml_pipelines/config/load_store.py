"""The load cache: results worked out from files, kept across processes while those files
are unchanged.

Every Dagster process (the code server, each run worker, the daemon) loads the code
location, and most of a load parses and checks files that have not changed since the
last one. A `LoadStore` keeps each result together with the signature (mtime, size,
inode) of every file it was worked out from, and hands it back only while all of those
files still have that signature.

One pickle per project under the product's home (`<ML_PIPELINES_HOME>/cache/`), written
atomically, and only when something changed; entries the load did not use are dropped
then. A missing, corrupt or foreign cache (another version of the product or of the
libraries that parse) only costs a fresh computation. The file is trusted like the rest
of the product's state directory: whoever can write there can edit the configs too.

One instance treats the files as unchanging for its lifetime (each file is stat'ed once):
use one per load (the load's `LoadSession` holds it, see session.py).
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Hashable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger("ml_pipelines")

Signature = tuple[int, int, int]  # st_mtime_ns, st_size, st_ino of a regular file
RACY_NS = 2_000_000_000  # files modified this recently are not cached yet
T = TypeVar("T")
_LIBRARIES = ("pydantic", "pydantic-core", "pyyaml", "jinja2", "nbformat", "sqlglot")


def signature(path: str | os.PathLike) -> Signature | None:
    """The file's signature; None when it is missing or not a regular file."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


@lru_cache(maxsize=1)
def product_fingerprint() -> str:
    """Changes whenever the code that computes cached results may have changed."""
    from importlib import metadata

    digest = hashlib.sha256(sys.version.encode())
    package = Path(__file__).resolve().parents[1]
    for source in sorted(package.rglob("*.py")):
        digest.update(source.relative_to(package).as_posix().encode() + b"\0" + source.read_bytes())
    for name in _LIBRARIES:
        try:
            digest.update(f"\0{name}={metadata.version(name)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"\0{name}=none".encode())
    return digest.hexdigest()


class LoadStore:
    """Key -> value, valid while the files it was computed from are unchanged."""

    def __init__(self, file: Path | None = None) -> None:
        self.file = file  # None: this process only
        self.hits = 0
        self.misses = 0
        self._stored: dict[Hashable, tuple[tuple, Any]] = {}  # read from disk
        self._used: dict[Hashable, tuple[tuple, Any]] = {}  # used or added by this load
        self._changed = False
        self._signatures: dict[str, Signature | None] = {}
        if file is not None:
            self._stored = self._read(file)

    @classmethod
    def for_project(cls, cache_dir: Path, project_root: Path) -> LoadStore:
        """The cache of the project at `project_root`, kept in `cache_dir`."""
        name = hashlib.sha256(os.fspath(Path(project_root).resolve()).encode()).hexdigest()[:16]
        return cls(Path(cache_dir) / f"load-{name}.pickle")

    # -- lookups -------------------------------------------------------------------------
    def signature(self, path: str | os.PathLike) -> Signature | None:
        text = os.fspath(path)
        try:
            return self._signatures[text]
        except KeyError:
            found = self._signatures[text] = signature(text)
            return found

    def get(self, key: Hashable, default: Any = None) -> Any:
        entry = self._used.get(key) or self._stored.get(key)
        if entry is None or any(self.signature(path) != sig for path, sig in entry[0]):
            self.misses += 1
            return default
        self.hits += 1
        self._used[key] = entry
        return entry[1]

    def put(self, key: Hashable, value: Any, files: Iterable[str | os.PathLike]) -> None:
        """Keep `value`, worked out from `files`, against the first signatures this instance
        took of them: take them before reading the files (`memo` does; other callers ask
        `signature`). A file that changed meanwhile, or too recently, leaves it out."""
        deps = tuple((os.fspath(f), self.signature(f)) for f in files)
        if any(signature(path) != sig for path, sig in deps):
            return
        # A file written within the last moments could be written again in the same
        # clock tick with the same size, and keep its signature: wait until it settles.
        settled = time.time_ns() - RACY_NS
        if any(sig is not None and sig[0] > settled for _, sig in deps):
            return
        self._used[key] = (deps, value)
        self._changed = True

    def memo(self, key: Hashable, files: Iterable[str | os.PathLike], compute: Callable[[], T]) -> T:
        """The cached value for `key`, or `compute()` kept against `files`."""
        files = list(files)
        for path in files:
            self.signature(path)  # before `compute` reads it (see `put`)
        missing = object()
        value = self.get(key, missing)
        if value is missing:
            value = compute()
            self.put(key, value, files)
        return value

    # -- disk ----------------------------------------------------------------------------
    def _read(self, file: Path) -> dict:
        try:
            with open(file, "rb") as handle:
                payload = pickle.load(handle)
        except FileNotFoundError:
            return {}
        except Exception as exc:  # corrupt or written by an incompatible version
            log.info("load cache %s not used: %s: %s", file, type(exc).__name__, exc)
            return {}
        if not isinstance(payload, dict) or payload.get("fingerprint") != product_fingerprint():
            return {}
        entries = payload.get("entries")
        return entries if isinstance(entries, dict) else {}

    def save(self) -> None:
        """Write what this load used, if that differs from what was read."""
        if self.file is None or (not self._changed and self._used.keys() == self._stored.keys()):
            return
        payload = {"fingerprint": product_fingerprint(), "entries": self._used}
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            handle, tmp = tempfile.mkstemp(dir=self.file.parent, prefix=self.file.name, suffix=".tmp")
            try:
                with os.fdopen(handle, "wb") as out:
                    pickle.dump(payload, out, protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(tmp, self.file)
            except BaseException:
                os.unlink(tmp)
                raise
        except Exception as exc:  # a read-only home only loses the speed-up
            log.warning("could not write the load cache %s: %s", self.file, exc)
            return
        self._stored = dict(self._used)
        self._changed = False
