"""LOCAL stand-in for AWS Glue's `awsglue` library, on plain PySpark.

Supported, and nothing else:

- `awsglue.utils.getResolvedOptions(sys.argv, ["NAME", ...])`: Glue semantics, `--NAME value`
  pairs, `GlueArgumentError` for a missing one, unknown arguments ignored.
- `awsglue.context.GlueContext(sc)`: `.spark_session`, `.get_logger()`,
  `.create_dynamic_frame.from_options(connection_type="s3", connection_options={"paths": [...]},
  format="csv"|"json"|"parquet", format_options={...})`,
  `.write_dynamic_frame.from_options(frame=..., connection_type="s3",
  connection_options={"path": ...}, format="csv"|"json"|"parquet", format_options={...})`.
- `awsglue.job.Job(glue_context)`: `.init(job_name, args)`, `.commit()` (no bookmarks kept).
- `awsglue.dynamicframe.DynamicFrame`: `.fromDF(df, glue_context, name)`, `.toDF()`, `.count()`.
- `from awsglue.transforms import *` imports (as in Glue's script template), but each transform
  raises when used.

Any other call raises `UnsupportedInLocal` (a NotImplementedError) naming the call.
s3:// paths map to `$ML_PIPELINES_STORAGE_ROOT/<bucket>/<key>`, as the LOCAL storage does;
the LOCAL Glue backend sets that variable.
"""

from __future__ import annotations

import importlib.abc
import sys
from pathlib import Path

STORAGE_ROOT_ENV = "ML_PIPELINES_STORAGE_ROOT"

SUBSET = (
    "getResolvedOptions; GlueContext(sc) with .spark_session, .get_logger(), "
    "create_dynamic_frame.from_options and write_dynamic_frame.from_options (connection_type 's3', "
    "format csv/json/parquet); Job.init/commit; DynamicFrame.fromDF/toDF/count"
)


class UnsupportedInLocal(NotImplementedError):
    """A Glue API that the LOCAL awsglue module does not implement."""


class UnsupportedInLocalAttribute(UnsupportedInLocal, AttributeError):
    pass  # keeps hasattr() working


class UnsupportedInLocalImport(UnsupportedInLocal, ImportError):
    """Keeps `except ImportError` working."""

    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.name = name


def unsupported_message(call: str) -> str:
    return (
        f"{call} is not supported in LOCAL: the local awsglue module implements only this subset "
        f"of AWS Glue: {SUBSET}. Use plain PySpark for the rest, or run in DEV/BETA/PROD."
    )


def unsupported(call: str) -> UnsupportedInLocal:
    return UnsupportedInLocal(unsupported_message(call))


def unsupported_attribute(owner: str, name: str) -> AttributeError:
    """For `__getattr__`: private names stay plain AttributeErrors (copy, pickle, introspection)."""
    if name.startswith("_"):
        return AttributeError(f"{owner!r} object has no attribute {name!r}")
    return UnsupportedInLocalAttribute(unsupported_message(f"{owner}.{name}"))


def unsupported_module_attribute(module: str, name: str) -> Exception:
    """For a module's `__getattr__`: `from awsglue.x import Missing` fails with the message."""
    if name.startswith("_"):
        return AttributeError(f"module {module!r} has no attribute {name!r}")
    return UnsupportedInLocalImport(unsupported_message(f"{module}.{name}"), name)


class _UnsupportedModules(importlib.abc.MetaPathFinder):
    """Last on sys.meta_path: an awsglue submodule nobody else found is an unsupported one."""

    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        if fullname.startswith(__name__ + "."):
            raise UnsupportedInLocalImport(unsupported_message(f"module {fullname}"), fullname)
        return None


if not any(isinstance(f, _UnsupportedModules) for f in sys.meta_path):
    sys.meta_path.append(_UnsupportedModules())


def local_path(uri: str) -> str:
    """s3://bucket/key -> <storage root>/bucket/key. A local path under the storage root (what
    LOCAL parameter files turn DEV s3:// values into) is accepted as is. Nothing may climb
    out of the root."""
    import os

    root_env = os.environ.get(STORAGE_ROOT_ENV)
    if not root_env:
        raise RuntimeError(
            f"{STORAGE_ROOT_ENV} is not set: LOCAL awsglue maps s3:// paths under that directory; "
            "run the script through the LOCAL Glue backend"
        )
    root = Path(root_env).resolve()
    scheme, sep, rest = uri.partition("://")
    if sep and scheme in ("s3", "s3a", "s3n"):
        bucket, _, key = rest.partition("/")
        path = (root / bucket / key).resolve()
        if not bucket:
            raise ValueError(f"{uri!r} has no bucket")
    elif sep and scheme == "file":
        path = Path(rest).resolve()
    elif not sep and os.path.isabs(uri):
        path = Path(uri).resolve()
    else:
        raise ValueError(f"connection_type 's3' needs s3:// paths (or LOCAL storage paths), got {uri!r}")
    if path != root and root not in path.parents:
        raise ValueError(f"{uri!r} points outside the local storage root {root}")
    return str(path)
