"""Adding documents to a knowledge base (:func:`add_documents`).

Adding is idempotent: an unchanged document adds nothing, a changed one replaces its chunks, and
only new chunks are embedded; the folder is written through :func:`rag.kb.files.write_state` (atomic
per file, manifest last) under an exclusive lock.

A document's **source** is its name in the knowledge base: a file given directly is named by its
file name, a file found in a given folder by ``<folder name>/<path inside the folder>``. Adding a
different file under a source already present replaces that document.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from rag.kb.chunk import DEFAULT_MAX_CHARS, MIN_MAX_CHARS, KBChunk, chunk_document, document_kind
from rag.kb.embed import TextEmbedder
from rag.kb.files import (
    CHUNKS,
    MANIFEST,
    KBDocument,
    KBManifest,
    KBState,
    check_embedder,
    default_kb_dir,
    load_state,
    locked,
    new_manifest,
    read_chunks,
    read_manifest,
    write_state,
)

__all__ = ["AddResult", "SkippedFile", "add_documents"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SkippedFile:
    """A file that was not added, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class AddResult:
    """What :func:`add_documents` did, by document source name."""

    folder: Path
    added: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    skipped: tuple[SkippedFile, ...] = ()
    chunks_added: int = 0
    chunks_removed: int = 0
    total_chunks: int = 0
    rebuilt: bool = False

    @property
    def changed(self) -> bool:
        """Whether the knowledge base was written."""
        return bool(self.added or self.replaced or self.rebuilt)

    def summary(self) -> str:
        """One line of counts, e.g. ``added=7 replaced=0 unchanged=0 skipped=1 chunks=+98/-0 total=98``."""
        line = (
            f"added={len(self.added)} replaced={len(self.replaced)} unchanged={len(self.unchanged)} "
            f"skipped={len(self.skipped)} chunks=+{self.chunks_added}/-{self.chunks_removed} total={self.total_chunks}"
        )
        return f"{line} rebuilt=yes" if self.rebuilt else line


@dataclass
class _Candidate:
    path: Path
    shown: str
    source: str
    kind: Literal["markdown", "text"]


@dataclass
class _Plan:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    new_docs: dict[str, tuple[KBDocument, list[KBChunk]]] = field(default_factory=dict)


def _candidates(paths: Iterable[Path | str]) -> tuple[list[_Candidate], list[SkippedFile]]:
    """Files to read, with their source names; paths that are not usable documents, with why."""
    found: list[_Candidate] = []
    skipped: list[SkippedFile] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            base = path.resolve()
            files = sorted(p for p in base.rglob("*") if p.is_file() and document_kind(p.name) is not None)
            files = [p for p in files if not any(part.startswith(".") for part in p.relative_to(base).parts)]
            pairs = [
                (p.resolve(), f"{base.name}/{p.relative_to(base).as_posix()}", str(path / p.relative_to(base)))
                for p in files
            ]
        elif path.is_file():
            if document_kind(path.name) is None:
                skipped.append(
                    SkippedFile(str(path), f"unsupported file type '{path.suffix}' (supported: .md, .markdown, .txt)")
                )
                continue
            pairs = [(path.resolve(), path.name, str(path))]
        else:
            skipped.append(SkippedFile(str(path), "no such file or folder"))
            continue
        for resolved, source, shown in pairs:
            if resolved in seen:
                continue
            seen.add(resolved)
            kind = document_kind(source)
            if kind is not None:
                found.append(_Candidate(resolved, shown, source, kind))
    return found, skipped


def _read_document(path: Path) -> tuple[str, str]:
    """The text of a document and the sha256 of its bytes.

    Raises:
        ValueError: the file is empty, binary or not UTF-8 text (the message is the reason).
        OSError: the file cannot be read.
    """
    data = path.read_bytes()
    if not data.strip():
        raise ValueError("empty file")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ValueError("UTF-16 text; save it as UTF-8 and add it again")
    if b"\x00" in data[:8192]:
        raise ValueError("binary file (NUL bytes), not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); save it as UTF-8 and add it again"
        ) from e
    return text, hashlib.sha256(data).hexdigest()


def _plan(
    candidates: list[_Candidate], manifest: KBManifest | None, max_chars: int, skipped: list[SkippedFile]
) -> _Plan:
    plan = _Plan(skipped=skipped)
    claimed: dict[str, str] = {}
    now = datetime.now(UTC)
    for cand in candidates:
        if cand.source in claimed:
            plan.skipped.append(
                SkippedFile(
                    cand.shown,
                    f"another file of this batch ({claimed[cand.source]}) has the same source name "
                    f"'{cand.source}'; add one of them separately or rename it",
                )
            )
            continue
        try:
            text, sha = _read_document(cand.path)
        except ValueError as e:
            plan.skipped.append(SkippedFile(cand.shown, str(e)))
            continue
        except OSError as e:
            plan.skipped.append(SkippedFile(cand.shown, f"cannot be read: {e.strerror or e}"))
            continue
        claimed[cand.source] = cand.shown
        old = manifest.document(cand.source) if manifest else None
        if old is not None and old.sha256 == sha and old.max_chars == max_chars:
            plan.unchanged.append(cand.source)
            continue
        chunks = chunk_document(text, cand.source, kind=cand.kind, max_chars=max_chars)
        if not chunks:
            plan.skipped.append(SkippedFile(cand.shown, "no text to index (headings or whitespace only)"))
            continue
        doc = KBDocument(source=cand.source, sha256=sha, chunks=len(chunks), max_chars=max_chars, added_at=now)
        plan.new_docs[cand.source] = (doc, chunks)
        (plan.replaced if old is not None else plan.added).append(cand.source)
    return plan


def add_documents(
    paths: Sequence[Path | str] | Path | str,
    folder: Path | str | None = None,
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
    rebuild: bool = False,
    embedder: TextEmbedder | None = None,
    progress: bool = False,
) -> AddResult:
    """Add Markdown and text documents (files, or folders walked recursively) to a knowledge base.

    An unchanged document (same source, bytes and ``max_chars``) adds nothing; a changed one replaces
    its chunks; a file that cannot be read is skipped with the reason and the others are still added.
    Only new chunks are embedded. Folders are searched for ``.md``, ``.markdown`` and ``.txt`` files;
    hidden files and folders are left out.

    Args:
        paths: files and folders; may be empty (with ``rebuild``, or to create an empty knowledge base).
        folder: the knowledge-base folder (default ``<workspace>/kb``), created when missing.
        max_chars: chunk size bound for the documents added now.
        rebuild: re-embed every stored chunk with ``embedder`` and re-index them, instead of refusing a
            knowledge base built with other weights (or left inconsistent by an interrupted write).
        embedder: default :class:`~rag.kb.embed.MiniLMEmbedder`.
        progress: show a progress bar while embedding.

    Raises:
        KBModelMismatchError: the knowledge base was embedded with other weights (pass ``rebuild=True``).
        KBError: the knowledge base is inconsistent (pass ``rebuild=True``) or cannot be written.
        ValueError: ``max_chars`` is out of range.
    """
    import numpy as np

    from rag.kb.embed import MiniLMEmbedder

    if max_chars < MIN_MAX_CHARS:
        raise ValueError(f"max_chars must be at least {MIN_MAX_CHARS}, got {max_chars}")
    if isinstance(paths, str | Path):
        paths = [paths]
    folder = Path(folder) if folder is not None else default_kb_dir()
    embedder = embedder or MiniLMEmbedder(progress=progress)
    with locked(folder):
        state: KBState | None = None
        if (folder / MANIFEST).is_file():
            if rebuild:
                manifest = read_manifest(folder)
                listed = {d.source for d in manifest.documents}
                chunks = read_chunks(folder / CHUNKS) if (folder / CHUNKS).is_file() else []
                chunks = [c for c in chunks if c.source in listed]
                state = KBState(manifest, chunks, np.zeros((0, embedder.dim), dtype=np.float32))
            else:
                state = load_state(folder)
                check_embedder(state.manifest, embedder, folder)
        candidates, skipped = _candidates(paths)
        plan = _plan(candidates, state.manifest if state else None, max_chars, skipped)
        if state is not None and not plan.new_docs and not rebuild:
            return AddResult(
                folder, unchanged=tuple(plan.unchanged), skipped=tuple(plan.skipped), total_chunks=len(state.chunks)
            )

        old_docs = state.manifest.documents if state else []
        old_chunks = state.chunks if state else []
        keep = [i for i, c in enumerate(old_chunks) if c.source not in plan.new_docs]
        kept_chunks = [old_chunks[i] for i in keep]
        if rebuild:
            present = {c.source for c in kept_chunks}
            counts = {s: sum(c.source == s for c in kept_chunks) for s in present}
            documents = [
                d.model_copy(update={"chunks": counts[d.source]})
                for d in old_docs
                if d.source in present and d.source not in plan.new_docs
            ]
            kept_dense = embedder.encode([c.indexed_text for c in kept_chunks]) if kept_chunks else None
        else:
            documents = [d for d in old_docs if d.source not in plan.new_docs]
            kept_dense = state.dense[keep] if state is not None else None
        new_chunks = [c for _, chunks in plan.new_docs.values() for c in chunks]
        documents += [doc for doc, _ in plan.new_docs.values()]
        new_dense = embedder.encode([c.indexed_text for c in new_chunks])
        parts = [a for a in (kept_dense, new_dense) if a is not None and len(a)]
        dense = np.concatenate(parts) if parts else np.zeros((0, embedder.dim), dtype=np.float32)
        manifest = new_manifest(embedder, documents)
        written = write_state(folder, KBState(manifest, kept_chunks + new_chunks, dense))
        log.info(
            "knowledge base %s: %d added, %d replaced, %d skipped, %d chunks",
            folder,
            len(plan.added),
            len(plan.replaced),
            len(plan.skipped),
            written.count,
        )
        return AddResult(
            folder,
            added=tuple(plan.added),
            replaced=tuple(plan.replaced),
            unchanged=tuple(plan.unchanged),
            skipped=tuple(plan.skipped),
            chunks_added=len(new_chunks),
            chunks_removed=len(old_chunks) - len(kept_chunks),
            total_chunks=written.count,
            rebuilt=rebuild and state is not None,
        )
