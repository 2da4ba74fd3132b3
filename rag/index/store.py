"""Persistence of indexes: ``indexes/<name>/`` = the back-end's files + ``manifest.json``.

The manifest names the embeddings an index was built from (encoder, checkpoint sha256, dimension,
metric, normalisation, preprocessing, source kind) and how it was built. Loading checks it against the
encoder and checkpoint in use and refuses a mismatch (:class:`rag.core.errors.ManifestMismatchError`):
vectors of another encoder are not comparable, and searching them would return confident nonsense.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rag.core.errors import ManifestMismatchError, VectorIndexError
from rag.core.manifest import mismatch
from rag.core.validation import format_validation_error
from rag.index.manifest import IndexManifest
from rag.index.protocol import VectorIndex

MANIFEST = "manifest.json"
SOURCES = ("clips", "images", "sections")


def manifest_for(
    index: VectorIndex,
    *,
    name: str,
    encoder: str,
    checkpoint_sha256: str,
    source: str,
    preprocessing: dict[str, Any] | None = None,
    embeddings_dir: Path | str | None = None,
    build_params: dict[str, Any] | None = None,
) -> IndexManifest:
    """A manifest describing ``index`` as it is now (kind, dim, count, parameters from the index itself)."""
    params = build_params if build_params is not None else dict(getattr(index, "params", {}))
    try:
        return IndexManifest(
            name=name,
            backend=getattr(index, "backend", "faiss"),
            kind=index.kind,
            encoder=encoder,
            checkpoint_sha256=checkpoint_sha256,
            dim=index.dim,
            preprocessing=dict(preprocessing or {}),
            count=len(index),
            build_params=params,
            created_at=datetime.now(UTC),
            source=source,
            embeddings_dir=str(embeddings_dir) if embeddings_dir is not None else None,
        )
    except ValidationError as e:
        raise VectorIndexError(f"Invalid index manifest: {format_validation_error(e)}") from e


def save_index(index: VectorIndex, folder: Path, manifest: IndexManifest) -> None:
    """Write ``index`` and its ``manifest`` to ``folder``; the manifest goes last, so its presence means complete.

    Raises:
        VectorIndexError: the manifest does not describe this index (kind, dim, count or backend).
    """
    from rag.core.clipfile import write_atomic

    folder = Path(folder)
    actual = {
        "backend": getattr(index, "backend", "faiss"),
        "kind": index.kind,
        "dim": index.dim,
        "count": len(index),
    }
    wrong = {key: (getattr(manifest, key), value) for key, value in actual.items() if getattr(manifest, key) != value}
    if wrong:
        detail = ", ".join(f"{key}: manifest {m!r} vs index {v!r}" for key, (m, v) in wrong.items())
        raise VectorIndexError(
            f"The manifest does not describe this index ({detail}); make it with manifest_for(index)"
        )
    index.save(folder)
    write_atomic(folder / MANIFEST, (manifest.model_dump_json(indent=2) + "\n").encode())


def save_index_of_embeddings(
    index: VectorIndex,
    folder: Path,
    *,
    name: str,
    embeddings: Path,
    embeddings_manifest: dict[str, Any],
    source: str,
    build_params: dict[str, Any] | None = None,
) -> IndexManifest:
    """Save an index built from a ``rag embed`` folder, its manifest naming that folder's encoder,
    checkpoint and preprocessing. Returns the manifest written."""
    manifest = manifest_for(
        index,
        name=name,
        encoder=str(embeddings_manifest["encoder"]),
        checkpoint_sha256=str(embeddings_manifest["checkpoint_sha256"]),
        source=source,
        preprocessing=dict(embeddings_manifest.get("preprocessing", {})),
        embeddings_dir=Path(embeddings).resolve(),
        build_params=build_params,
    )
    save_index(index, folder, manifest)
    return manifest


def read_manifest(folder: Path) -> IndexManifest:
    """The manifest of the index in ``folder``.

    Raises:
        VectorIndexError: no manifest, or one that is not valid JSON or not a valid manifest.
    """
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise VectorIndexError(
            f"No index at {folder} ({MANIFEST} missing); build one with "
            "`rag index build --embeddings <folder from rag embed> --source clips --name NAME`"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise VectorIndexError(f"{path} is not readable JSON ({e}); rebuild the index with `rag index build`") from e
    try:
        return IndexManifest.model_validate(data)
    except ValidationError as e:
        raise VectorIndexError(f"{path} is not a valid index manifest: {format_validation_error(e)}") from e


def check_manifest(
    manifest: IndexManifest,
    folder: Path,
    *,
    expect_encoder: str | None = None,
    expect_checkpoint_sha256: str | None = None,
    expect_dim: int | None = None,
) -> None:
    """Refuse an index built from other embeddings than the ones in use.

    Raises:
        ManifestMismatchError: naming both values and the command that rebuilds the index.
    """
    encoder = expect_encoder or manifest.encoder
    sha = expect_checkpoint_sha256 or manifest.checkpoint_sha256
    rebuild = (
        f"rebuild it: `rag index build --embeddings <workspace>/embeddings/{encoder}@{sha[:12]} "
        f"--source {manifest.source} --name {manifest.name} --kind {manifest.kind}`"
    )
    problem = mismatch(manifest, encoder=expect_encoder, checkpoint_sha256=expect_checkpoint_sha256, dim=expect_dim)
    if problem is not None:
        raise ManifestMismatchError(f"Index '{manifest.name}' ({folder}) {problem}; {rebuild}")


def load_index(
    folder: Path,
    *,
    expect_encoder: str | None = None,
    expect_checkpoint_sha256: str | None = None,
    expect_dim: int | None = None,
    mmap: bool = True,
    device: str = "cpu",
    milvus_token: str | None = None,
) -> tuple[VectorIndex, IndexManifest]:
    """Load the index in ``folder`` after checking its manifest against the embeddings in use.

    Args:
        folder: ``<workspace>/indexes/<name>``.
        expect_encoder, expect_checkpoint_sha256, expect_dim: what the caller's query vectors come from;
            ``None`` skips that check.
        mmap: FAISS: memory-map the index files (read-only until changed) instead of reading them.
        device: FAISS: ``cpu``, ``auto`` or ``cuda``.
        milvus_token: Milvus: the server's token (never written to the manifest).

    Raises:
        ManifestMismatchError: the index was built from another encoder, checkpoint or dimension.
        VectorIndexError: files missing, unreadable, or not matching the manifest.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    check_manifest(
        manifest,
        folder,
        expect_encoder=expect_encoder,
        expect_checkpoint_sha256=expect_checkpoint_sha256,
        expect_dim=expect_dim,
    )
    index: VectorIndex
    if manifest.backend == "faiss":
        from rag.index.faiss_index import FaissIndex

        index = FaissIndex.load(
            folder, kind=manifest.kind, dim=manifest.dim, params=manifest.build_params, mmap=mmap, device=device
        )
    else:
        from rag.index.milvus_index import MilvusIndex

        index = MilvusIndex.from_manifest(folder, manifest, token=milvus_token)
    if index.dim != manifest.dim or len(index) != manifest.count:
        raise VectorIndexError(
            f"Index '{manifest.name}' ({folder}) holds {len(index)} {index.dim}-d vectors but its manifest says "
            f"{manifest.count} {manifest.dim}-d ones; it was changed without saving, rebuild it with `rag index build`"
        )
    return index, manifest
