"""Lazy re-exports for packages whose public names live in modules with heavy imports.

A package lists its public names and the module of each, then takes its ``__getattr__`` and
``__dir__`` from :func:`lazy_exports`::

    _LAZY = {"CaseRetriever": "rag.retrieve.retriever"}
    __getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports", "resolve"]


def resolve(package: str, table: Mapping[str, str], namespace: dict[str, Any], name: str) -> Any:
    """Import ``name`` from the module ``table`` assigns it to, cache it in ``namespace`` and return it.

    Raises:
        AttributeError: ``name`` is not one of the package's lazy exports.
    """
    module = table.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    namespace[name] = value
    return value


def lazy_exports(
    package: str, table: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of a package whose names in ``table`` load on first use."""

    def __getattr__(name: str) -> Any:
        return resolve(package, table, namespace, name)

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
