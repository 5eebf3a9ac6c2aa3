"""`GlueContext(sc)`: Spark session, logger, and s3 `from_options` reads/writes on local files."""

from __future__ import annotations

import sys
import time
from typing import Any

from . import local_path, unsupported, unsupported_attribute, unsupported_module_attribute
from .dynamicframe import DynamicFrame

_FORMATS = ("csv", "json", "parquet")
# Glue format_options -> Spark reader/writer options
_CSV_READ = {
    "withHeader": "header",
    "separator": "sep",
    "quoteChar": "quote",
    "escaper": "escape",
    "multiLine": "multiLine",
}
_CSV_WRITE = {"writeHeader": "header", "separator": "sep", "quoteChar": "quote", "escaper": "escape"}
_JSON_READ = {"multiLine": "multiLine"}
_PARQUET_WRITE = {"compression": "compression"}
# Performance hints Glue accepts that mean nothing on one machine.
_IGNORED_READ_CONNECTION_OPTIONS = ("groupFiles", "groupSize")


def _spark_options(call: str, fmt: str, format_options: dict[str, Any], mapping: dict[str, str]) -> dict[str, str]:
    options = {}
    for key, value in format_options.items():
        if key not in mapping:
            raise unsupported(f"{call}(format={fmt!r}, format_options={{{key!r}: ...}})")
        if key == "quoteChar" and value in (-1, "-1"):
            value = ""  # Glue's "no quoting"; an empty quote turns quoting off in Spark
        options[mapping[key]] = str(value).lower() if isinstance(value, bool) else str(value)
    return options


def _check_format(call: str, fmt: Any) -> str:
    fmt = "parquet" if fmt == "glueparquet" and call.startswith("write") else fmt
    if fmt not in _FORMATS:
        raise unsupported(f"{call}(format={fmt!r})")
    return str(fmt)


class GlueLogger:
    """What `get_logger()` returns: log4j-style lines on stderr."""

    def _emit(self, level: str, msg: Any) -> None:
        print(f"{time.strftime('%y/%m/%d %H:%M:%S')} {level} GlueLogger: {msg}", file=sys.stderr, flush=True)

    def info(self, msg: Any) -> None:
        self._emit("INFO", msg)

    def warn(self, msg: Any) -> None:
        self._emit("WARN", msg)

    warning = warn

    def error(self, msg: Any) -> None:
        self._emit("ERROR", msg)

    def debug(self, msg: Any) -> None:
        self._emit("DEBUG", msg)


class _DynamicFrameReader:
    def __init__(self, glue_context: GlueContext) -> None:
        self._gc = glue_context

    def from_options(
        self,
        connection_type: str,
        connection_options: dict[str, Any] | None = None,
        format: str | None = None,  # noqa: A002 - Glue's name
        format_options: dict[str, Any] | None = None,
        transformation_ctx: str = "",
        push_down_predicate: str = "",
        **kwargs: Any,
    ) -> DynamicFrame:
        call = "create_dynamic_frame.from_options"
        if connection_type != "s3":
            raise unsupported(f"{call}(connection_type={connection_type!r})")
        if push_down_predicate or kwargs:
            raise unsupported(
                f"{call}({', '.join(['push_down_predicate'] * bool(push_down_predicate) + list(kwargs))}=...)"
            )
        fmt = _check_format(call, format)
        conn = dict(connection_options or {})
        paths = conn.pop("paths", None)
        if isinstance(paths, str):
            paths = [paths]
        if not paths:
            raise ValueError(f'{call}: connection_options needs "paths": ["s3://..."]')
        options: dict[str, str] = {}
        if conn.pop("recurse", False):
            options["recursiveFileLookup"] = "true"
        for key in conn:
            if key not in _IGNORED_READ_CONNECTION_OPTIONS:
                raise unsupported(f"{call}(connection_options={{{key!r}: ...}})")
        if fmt == "csv":
            options.update(_spark_options(call, fmt, format_options or {}, _CSV_READ))
            options.setdefault("inferSchema", "true")
        elif fmt == "json":
            options.update(_spark_options(call, fmt, format_options or {}, _JSON_READ))
        else:
            options.update(_spark_options(call, fmt, format_options or {}, {}))
        df = self._gc.spark_session.read.format(fmt).options(**options).load([local_path(p) for p in paths])
        if fmt == "csv" and options.get("header") != "true":
            df = df.toDF(*[f"col{i}" for i in range(len(df.columns))])  # Glue names headerless columns col0..
        return DynamicFrame(df, self._gc, transformation_ctx)

    def __getattr__(self, name: str) -> Any:
        raise unsupported_attribute("GlueContext.create_dynamic_frame", name)


class _DynamicFrameWriter:
    def __init__(self, glue_context: GlueContext) -> None:
        self._gc = glue_context

    def from_options(
        self,
        frame: DynamicFrame,
        connection_type: str,
        connection_options: dict[str, Any] | None = None,
        format: str | None = None,  # noqa: A002 - Glue's name
        format_options: dict[str, Any] | None = None,
        transformation_ctx: str = "",
        **kwargs: Any,
    ) -> DynamicFrame:
        call = "write_dynamic_frame.from_options"
        if connection_type != "s3":
            raise unsupported(f"{call}(connection_type={connection_type!r})")
        if kwargs:
            raise unsupported(f"{call}({', '.join(kwargs)}=...)")
        if not isinstance(frame, DynamicFrame):
            raise TypeError(f"{call}: frame must be a DynamicFrame, got {type(frame).__name__}")
        fmt = _check_format(call, format)
        conn = dict(connection_options or {})
        path = conn.pop("path", None)
        if not path:
            raise ValueError(f'{call}: connection_options needs "path": "s3://..."')
        partition_keys = conn.pop("partitionKeys", [])
        for key in conn:
            raise unsupported(f"{call}(connection_options={{{key!r}: ...}})")
        mapping = {"csv": _CSV_WRITE, "json": {}, "parquet": _PARQUET_WRITE}[fmt]
        options = _spark_options(call, fmt, format_options or {}, mapping)
        if fmt == "csv":
            options.setdefault("header", "true")  # Glue writes a header by default
        # Glue sinks add files next to what is there: append, never overwrite.
        writer = frame.toDF().write.mode("append").format(fmt).options(**options)
        if partition_keys:
            writer = writer.partitionBy(*partition_keys)
        writer.save(local_path(path))
        return frame

    def __getattr__(self, name: str) -> Any:
        raise unsupported_attribute("GlueContext.write_dynamic_frame", name)


class GlueContext:
    def __init__(self, sparkContext: Any, **options: Any) -> None:  # noqa: N803 - Glue's name
        if options:
            raise unsupported(f"GlueContext(sc, {', '.join(options)}=...)")
        from pyspark.sql import SparkSession

        self._sc = sparkContext
        self.spark_session = SparkSession.builder.getOrCreate()  # the session over `sc`
        self.create_dynamic_frame = _DynamicFrameReader(self)
        self.write_dynamic_frame = _DynamicFrameWriter(self)
        self._logger = GlueLogger()

    def get_logger(self) -> GlueLogger:
        return self._logger

    def __getattr__(self, name: str) -> Any:
        raise unsupported_attribute("GlueContext", name)


def __getattr__(name: str) -> Any:
    raise unsupported_module_attribute(__name__, name)
