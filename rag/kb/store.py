"""Persistence of the knowledge base: one folder (default ``<workspace>/kb/``) holding

- ``chunks.jsonl``: one chunk per line (``chunk_id``, ``source``, ``heading``, ``text``), in row order;
- ``dense.npy``: (n, 384) float32 MiniLM embeddings of the chunks, L2-normalised, same row order;
- ``bm25.*``: the BM25 index of the chunks (``bm25s`` files), same row order;
- ``manifest.json``: the embedding model and the sha256 of its weights, tokenizer and BM25
  parameters, the documents (source name, sha256, chunk count, chunking) and the sha256 of every
  data file.

:func:`add_documents` is idempotent: an unchanged document adds nothing, a changed one replaces its
chunks, and only new chunks are embedded. A write goes to a staging folder first and is moved into
place file by file with ``os.replace``, the manifest last, so a failure leaves the previous knowledge
base as it was; readers check every data file against the manifest's sha256 and refuse a mismatch.
A knowledge base embedded with other MiniLM weights than the installed ones is refused
(:class:`~rag.kb.errors.KBModelMismatchError`) until rebuilt with ``rag kb add --rebuild``.

A document's **source** is its name in the knowledge base: a file given directly is named by its
file name, a file found in a given folder by ``<folder name>/<path inside the folder>``. Adding a
different file under a source already present replaces that document.

This module gathers the public names of the two halves:

- :mod:`rag.kb.files`: the folder's files, the manifest, verified loading and atomic writing;
- :mod:`rag.kb.documents`: collecting and reading documents, and :func:`add_documents`.
"""

from __future__ import annotations

from rag.kb.documents import AddResult, SkippedFile, add_documents
from rag.kb.files import (
    CHUNKS,
    DENSE,
    FORMAT_VERSION,
    MANIFEST,
    KBDocument,
    KBManifest,
    KBState,
    check_embedder,
    default_kb_dir,
    load_state,
    read_manifest,
    starter_dir,
)

__all__ = [
    "CHUNKS",
    "DENSE",
    "FORMAT_VERSION",
    "MANIFEST",
    "AddResult",
    "KBDocument",
    "KBManifest",
    "KBState",
    "SkippedFile",
    "add_documents",
    "check_embedder",
    "default_kb_dir",
    "load_state",
    "read_manifest",
    "starter_dir",
]
