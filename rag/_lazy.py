"""Lazy re-exports for packages whose public names live in modules with heavy imports."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any


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
