"""The S3 layout mirrored under a local root: s3://bucket/key <-> <root>/bucket/key."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from pydantic import Field

from ml_pipelines.config.parameters import s3_uri_to_local_path as s3_to_local
from ml_pipelines.config.parameters import split_s3_uri
from ml_pipelines.steps import Storage

__all__ = ["LocalStorage", "join_uri", "local_to_s3", "s3_to_local", "split_s3_uri"]


def join_uri(prefix: str, name: str) -> str:
    """`prefix` + "/" + `name`, whether or not the prefix ends with a slash."""
    return f"{prefix.rstrip('/')}/{name}"


def local_to_s3(path: str | Path, root: str | Path) -> str:
    rel = Path(path).resolve().relative_to(Path(root).resolve())
    return "s3://" + rel.as_posix()


class LocalStorage(Storage):
    """Object storage as plain files under `root`."""

    root: str = Field(description="Local directory that mirrors S3: <root>/<bucket>/<key>.")

    def path_for(self, uri: str) -> Path:
        return s3_to_local(uri, self.root)

    def put_file(self, local_path: str, uri: str) -> str:
        """Copy to a hidden temporary name next to the target, then rename: a reader sees the old
        file or the new one, never a part (dot-files are skipped by Glue's and the warehouse's listings)."""
        target = self.path_for(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out, open(local_path, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return uri

    def put_tree(self, local_dir: str, uri_prefix: str) -> list[str]:
        written = []
        base = Path(local_dir)
        prefix = uri_prefix.rstrip("/")
        for src in sorted(p for p in base.rglob("*") if p.is_file()):
            written.append(self.put_file(str(src), f"{prefix}/{src.relative_to(base).as_posix()}"))
        return written

    def list(self, uri_prefix: str) -> list[str]:
        base = self.path_for(uri_prefix)
        if base.is_file():
            return [uri_prefix]
        if not base.exists():
            return []
        return sorted(local_to_s3(p, self.root) for p in base.rglob("*") if p.is_file())

    def read_bytes(self, uri: str) -> bytes:
        return self.path_for(uri).read_bytes()
