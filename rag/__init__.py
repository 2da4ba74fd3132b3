"""Multimodal retrieval-augmented interpretation of echocardiograms.

``rag.draft_report(study)`` drafts the report of a stored study ID or a folder of DICOMs; see
:mod:`rag.draft`. Importing ``rag`` loads nothing heavy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rag.core.lazy import lazy_exports
from rag.core.version import __version__

if TYPE_CHECKING:
    from rag import compare
    from rag.draft.drafter import draft_report

_LAZY: dict[str, str] = {"draft_report": "rag.draft.drafter"}

_lazy_getattr, _lazy_dir = lazy_exports(__name__, _LAZY, globals())


def __getattr__(name: str) -> Any:
    if name == "compare":  # the package itself, which is callable: rag.compare(study)
        return importlib.import_module("rag.compare")
    return _lazy_getattr(name)


def __dir__() -> list[str]:
    return sorted({*_lazy_dir(), "compare"})


__all__ = ["__version__", "compare", "draft_report"]
