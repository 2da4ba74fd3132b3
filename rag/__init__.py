"""Multimodal retrieval-augmented interpretation of echocardiograms.

``rag.draft_report(study)`` drafts the report of a stored study ID or a folder of DICOMs; see
:mod:`rag.draft`. Importing ``rag`` loads nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.core.lazy import lazy_exports
from rag.core.version import __version__

if TYPE_CHECKING:
    from rag.draft.drafter import draft_report

_LAZY: dict[str, str] = {"draft_report": "rag.draft.drafter"}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())

__all__ = ["__version__", "draft_report"]
