"""`DynamicFrame` as a thin wrapper of a Spark DataFrame (no choice types, no schema-on-read)."""

from __future__ import annotations

from typing import Any

from . import unsupported, unsupported_attribute, unsupported_module_attribute


class DynamicFrame:
    def __init__(self, df: Any, glue_ctx: Any, name: str = "") -> None:
        self._df = df
        self.glue_ctx = glue_ctx
        self.name = name

    @classmethod
    def fromDF(cls, dataframe: Any, glue_ctx: Any, name: str) -> DynamicFrame:  # noqa: N802
        return cls(dataframe, glue_ctx, name)

    def toDF(self, options: Any = None) -> Any:  # noqa: N802
        if options:
            raise unsupported("DynamicFrame.toDF(options=...)")
        return self._df

    def count(self) -> int:
        return int(self._df.count())

    def __getattr__(self, name: str) -> Any:
        raise unsupported_attribute("DynamicFrame", name)


def __getattr__(name: str) -> Any:
    raise unsupported_module_attribute(__name__, name)
