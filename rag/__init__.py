"""Multimodal retrieval-augmented interpretation of echocardiograms.

``rag.draft_report(study)`` drafts the report of a stored study ID or a folder of DICOMs; see
:mod:`rag.draft`. Importing ``rag`` loads nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from rag.draft.drafter import draft_report


def __getattr__(name: str) -> Any:
    if name == "draft_report":
        from rag.draft.drafter import draft_report

        return draft_report
    raise AttributeError(f"module 'rag' has no attribute {name!r}")


__all__ = ["__version__", "draft_report"]
