"""Knowledge base: reference passages (guideline thresholds, normal ranges) found by hybrid search.

Markdown and text documents are chunked by heading (:func:`chunk_document`), embedded with
all-MiniLM-L6-v2 and indexed with BM25 in one folder (default ``<workspace>/kb``); a search fuses the
dense and keyword rankings by reciprocal rank. A starter knowledge base of echo reference values
ships with the package (:func:`starter_dir`)::

    from rag.kb import KnowledgeBase, add_documents, starter_dir

    result = add_documents([starter_dir()], "ws/kb")      # idempotent; skipped files come with reasons
    print(result.summary())
    kb = KnowledgeBase.open("ws/kb")
    for hit in kb.search("IVC collapse right atrial pressure", k=3):
        print(hit.chunk_id, hit.heading, f"{hit.score:.4f}", hit.dense_rank, hit.bm25_rank)

Importing this package imports neither numpy nor the embedding model: names load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.core.lazy import lazy_exports

if TYPE_CHECKING:
    from rag.kb.chunk import DEFAULT_MAX_CHARS, KBChunk, chunk_document
    from rag.kb.embed import MiniLMEmbedder, TextEmbedder
    from rag.kb.errors import KBError, KBModelMismatchError, KBQueryError, UnknownChunkError
    from rag.kb.search import KBHit, KnowledgeBase, reciprocal_rank_fusion
    from rag.kb.store import (
        AddResult,
        KBDocument,
        KBManifest,
        SkippedFile,
        add_documents,
        default_kb_dir,
        read_manifest,
        starter_dir,
    )

_LAZY: dict[str, str] = {
    "DEFAULT_MAX_CHARS": "rag.kb.chunk",
    "KBChunk": "rag.kb.chunk",
    "chunk_document": "rag.kb.chunk",
    "MiniLMEmbedder": "rag.kb.embed",
    "TextEmbedder": "rag.kb.embed",
    "KBError": "rag.kb.errors",
    "KBModelMismatchError": "rag.kb.errors",
    "KBQueryError": "rag.kb.errors",
    "UnknownChunkError": "rag.kb.errors",
    "KBHit": "rag.kb.search",
    "KnowledgeBase": "rag.kb.search",
    "reciprocal_rank_fusion": "rag.kb.search",
    "AddResult": "rag.kb.store",
    "KBDocument": "rag.kb.store",
    "KBManifest": "rag.kb.store",
    "SkippedFile": "rag.kb.store",
    "add_documents": "rag.kb.store",
    "default_kb_dir": "rag.kb.store",
    "read_manifest": "rag.kb.store",
    "starter_dir": "rag.kb.store",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())


__all__ = [
    "DEFAULT_MAX_CHARS",
    "AddResult",
    "KBChunk",
    "KBDocument",
    "KBError",
    "KBHit",
    "KBManifest",
    "KBModelMismatchError",
    "KBQueryError",
    "KnowledgeBase",
    "MiniLMEmbedder",
    "SkippedFile",
    "TextEmbedder",
    "UnknownChunkError",
    "add_documents",
    "chunk_document",
    "default_kb_dir",
    "read_manifest",
    "reciprocal_rank_fusion",
    "starter_dir",
]
