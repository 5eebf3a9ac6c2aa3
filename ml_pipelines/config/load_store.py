"""The load cache: results worked out from files, kept across processes while those files
are unchanged.

Every Dagster process (the code server, each run worker, the daemon) loads the code
location, and most of a load parses and checks files that have not changed since the
last one. A `LoadStore` keeps each result together with the signature (mtime, size,
inode) of every file it was worked out from, and hands it back only while all of those
files still have that signature.

One JSON file per project (`load-<hash of the project's path>.json`) in the user's cache
folder (`settings.cache_dir`), written atomically, and only when something changed;
entries the load did not use are dropped then. The file holds plain data only: each kind
of result is written and read back by its `Codec` (see load_store_codec.py), and a result
whose kind has no codec, or whose value the codec cannot write, stays in this process.
Reading it runs nothing from it. A cache file that is not a regular file owned by the
current user, or that others may write (the file or its folder), is ignored with a
warning. A missing, corrupt or foreign cache (another format, version of the product or
of the libraries that parse) only costs a fresh computation.

One instance treats the files as unchanging for its lifetime (each file is stat'ed once):
use one per load (the load's `LoadSession` holds it, see session.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger("ml_pipelines")

Signature = tuple[int, int, int]  # st_mtime_ns, st_size, st_ino of a regular file
RACY_NS = 2_000_000_000  # files modified this recently are not cached yet
FORMAT = "ml-pipelines load cache 2"  # changes with the file's layout
T = TypeVar("T")
_LIBRARIES = ("pydantic", "pydantic-core", "pyyaml", "jinja2", "nbformat", "sqlglot")
_UNSAFE_BITS = stat.S_IWGRP | stat.S_IWOTH


class Unencodable(Exception):
    """A value its codec cannot write as plain data: it is kept in this process only."""


@dataclass(frozen=True)
class Codec:
    """How one kind of result is written as JSON data and read back. `decode` gets data
    from a file and must check its shape: any exception makes the entry a miss."""

    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


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


def default_cache_dir() -> Path:
    """The user's cache folder for the product: $XDG_CACHE_HOME/ml-pipelines, else
    ~/.cache/ml-pipelines."""
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "ml-pipelines"


def unsafe_reason(st: os.stat_result, what: str) -> str | None:
    """Why a cache file or folder with this stat must not be trusted; None when it may."""
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return f"{what} is owned by uid {st.st_uid}, not by the current user"
    if st.st_mode & _UNSAFE_BITS:
        return f"{what} is writable by others (mode {stat.S_IMODE(st.st_mode):o})"
    return None


# An entry: (deps, value, data). deps: ((path, signature or None), ...); value: the result
# (_UNREAD until decoded); data: its JSON form (_UNWRITTEN until encoded, _LOCAL when it
# stays in this process).
_UNREAD, _UNWRITTEN, _LOCAL = object(), object(), object()


class LoadStore:
    """Key -> value, valid while the files it was computed from are unchanged.

    Keys of the form (kind, path) whose kind has a codec are kept on disk; any other key
    only for this instance."""

    def __init__(self, file: Path | None = None, codecs: Mapping[str, Codec] | None = None) -> None:
        self.file = file  # None: this process only
        self.codecs = dict(codecs or {})
        self.hits = 0
        self.misses = 0
        self.skipped = 0  # results not written: no codec, or a value it cannot write
        self._stored: dict[Hashable, tuple] = {}  # read from disk
        self._used: dict[Hashable, tuple] = {}  # used or added by this load
        self._changed = False
        self._writable = True  # False when the folder is not safe to keep a cache in
        self._signatures: dict[str, Signature | None] = {}
        if file is not None:
            self._stored = self._read(file)

    @classmethod
    def for_project(cls, cache_dir: Path, project_root: Path, codecs: Mapping[str, Codec]) -> LoadStore:
        """The cache of the project at `project_root`, kept in `cache_dir`."""
        name = hashlib.sha256(os.fspath(Path(project_root).resolve()).encode()).hexdigest()[:16]
        return cls(Path(cache_dir) / f"load-{name}.json", codecs)

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
        if entry[1] is _UNREAD:
            try:
                entry = (entry[0], self.codecs[key[0]].decode(entry[2]), entry[2])
            except Exception as exc:  # data of the wrong shape: worked out afresh
                log.debug("load cache entry %r not used: %s: %s", key, type(exc).__name__, exc)
                self._stored.pop(key, None)
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
        self._used[key] = (deps, value, _UNWRITTEN)
        self._changed = self._changed or self._on_disk(key)

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
    def _refuse(self, file: Path) -> str | None:
        """Why the cache folder must not be used; None when it may."""
        try:
            return unsafe_reason(os.stat(file.parent), f"its folder {file.parent}")
        except FileNotFoundError:
            return None  # created (private) by `save`
        except OSError as exc:
            return f"its folder cannot be checked: {exc}"

    def _read(self, file: Path) -> dict:
        reason = self._refuse(file)
        if reason is not None:
            self._writable = False
            log.warning("load cache %s ignored: %s", file, reason)
            return {}
        try:
            fd = os.open(file, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            return {}
        except OSError as exc:  # a symlink (O_NOFOLLOW), unreadable...
            log.warning("load cache %s ignored: %s", file, exc)
            return {}
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(handle.fileno())
            reason = "it is not a regular file" if not stat.S_ISREG(st.st_mode) else unsafe_reason(st, "it")
            if reason is not None:
                log.warning("load cache %s ignored: %s", file, reason)
                return {}
            try:
                payload = json.loads(handle.read())
            except Exception as exc:  # corrupt, truncated
                log.info("load cache %s not used: %s: %s", file, type(exc).__name__, exc)
                return {}
        if (
            not isinstance(payload, dict)
            or payload.get("format") != FORMAT
            or payload.get("fingerprint") != product_fingerprint()
            or not isinstance(payload.get("entries"), list)
        ):
            return {}
        entries: dict[Hashable, tuple] = {}
        for item in payload["entries"]:
            try:
                kind, path, raw_deps, data = item
                if kind not in self.codecs or not isinstance(path, str):
                    continue
                deps = tuple((p, None if s is None else (int(s[0]), int(s[1]), int(s[2]))) for p, s in raw_deps)
                if not all(isinstance(p, str) for p, _ in deps):
                    continue
            except (TypeError, ValueError, IndexError):
                continue
            entries[(kind, path)] = (deps, _UNREAD, data)
        return entries

    def _encoded(self, key: Hashable, entry: tuple) -> list | None:
        """The entry as written to the file; None when it stays in this process."""
        deps, value, data = entry
        if data is _UNWRITTEN:
            codec = self.codecs.get(key[0]) if isinstance(key, tuple) and len(key) == 2 else None
            data = _LOCAL
            if codec is not None and isinstance(key[1], str):
                try:
                    data = codec.encode(value)
                except Unencodable as exc:
                    log.debug("load cache: %r kept in this process only: %s", key, exc)
            self._used[key] = (deps, value, data)
        if data is _LOCAL:
            self.skipped += 1
            return None
        return [key[0], key[1], [[p, None if s is None else list(s)] for p, s in deps], data]

    def _on_disk(self, key: Hashable) -> bool:
        """Whether results under `key` go to the file (its kind has a codec)."""
        return isinstance(key, tuple) and len(key) == 2 and key[0] in self.codecs

    def save(self) -> None:
        """Write what this load used, if that differs from what was read."""
        kept = {key for key in self._used if self._on_disk(key)}
        if self.file is None or (not self._changed and kept == self._stored.keys()):
            return
        if not self._writable:
            return  # the folder is not safe (warned when read): fix its permissions
        self.skipped = 0
        entries = [e for key, entry in list(self._used.items()) if (e := self._encoded(key, entry)) is not None]
        payload = {"format": FORMAT, "fingerprint": product_fingerprint(), "entries": entries}
        try:
            self.file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            handle, tmp = tempfile.mkstemp(dir=self.file.parent, prefix=self.file.name, suffix=".tmp")
            try:
                with os.fdopen(handle, "wb") as out:
                    # dumps, not dump: only dumps uses the C encoder
                    out.write(json.dumps(payload, separators=(",", ":")).encode())
                os.replace(tmp, self.file)
            except BaseException:
                os.unlink(tmp)
                raise
        except Exception as exc:  # a read-only cache folder only loses the speed-up
            log.warning("could not write the load cache %s: %s", self.file, exc)
            return
        self._stored = dict(self._used)
        self._changed = False
