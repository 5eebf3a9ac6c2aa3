"""Glue's transforms, importable (`from awsglue.transforms import *`) but unsupported when used."""

from __future__ import annotations

from typing import Any, NoReturn

from . import unsupported, unsupported_module_attribute

__all__ = [
    "ApplyMapping",
    "Coalesce",
    "DropFields",
    "DropNullFields",
    "ErrorsAsDynamicFrame",
    "Filter",
    "FlatMap",
    "GlueTransform",
    "Join",
    "Map",
    "MapToCollection",
    "Relationalize",
    "RenameField",
    "Repartition",
    "ResolveChoice",
    "SelectFields",
    "SelectFromCollection",
    "Spigot",
    "SplitFields",
    "SplitRows",
    "Union",
    "Unbox",
    "UnnestFrame",
]


class _UnsupportedTransform:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise unsupported(f"awsglue.transforms.{type(self).__name__}")

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> NoReturn:
        raise unsupported(f"awsglue.transforms.{cls.__name__}.apply")

    @classmethod
    def describe(cls) -> NoReturn:
        raise unsupported(f"awsglue.transforms.{cls.__name__}.describe")


for _name in __all__:
    globals()[_name] = type(_name, (_UnsupportedTransform,), {"__module__": __name__})
del _name


def __getattr__(name: str) -> Any:
    raise unsupported_module_attribute(__name__, name)
