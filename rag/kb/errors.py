"""Typed exceptions of the knowledge base (all derive from :class:`rag.core.errors.RagError`)."""

from __future__ import annotations

from rag.core.errors import RagError

__all__ = ["KBError", "KBModelMismatchError", "KBQueryError", "UnknownChunkError"]


class KBError(RagError):
    """The knowledge base cannot be opened, written or searched (the message names the folder and the fix)."""


class KBQueryError(KBError, ValueError):
    """A search was given an empty or non-string query, or a bad ``k``."""


class KBModelMismatchError(KBError):
    """The knowledge base was embedded with other MiniLM weights than the installed ones; it must be rebuilt."""


class UnknownChunkError(KBError, LookupError):
    """No chunk of the knowledge base has the requested ID."""
