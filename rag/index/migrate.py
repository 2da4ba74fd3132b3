"""Moving an index between back-ends: FAISS files <-> a Milvus collection (Lite file or server).

The vectors are read back from the source index in chunks by their IDs, written to the target with
the same IDs and kind, and the target is saved with the source's manifest fields (encoder,
checkpoint, source, preprocessing, embeddings folder), so everything that opens the index checks it
as before. A Milvus copy also gets each row's ``view`` and ``modality`` (:mod:`rag.index.attributes`):
the modality from the index's source, a clip's view from the catalog (the view its source declared) or
else from the view head's probabilities in the embeddings folder. A FAISS copy stores no attributes.
``migrate_index`` then checks the copy: same count, and for a sample of stored vectors
the same nearest IDs from both (exact kinds) or an overlap it reports (approximate kinds).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.core.errors import VectorIndexError
from rag.index.protocol import VectorIndex
from rag.index.store import MANIFEST, load_index, manifest_for, save_index

if TYPE_CHECKING:
    from rag.index.catalog import Catalog

__all__ = ["MigrationResult", "migrate_index"]

TOKEN_ENV = "RAG_MILVUS_TOKEN"


@dataclass(frozen=True)
class MigrationResult:
    """What was copied and how well the copy answers like the source."""

    source: Path
    target: Path
    backend: str
    count: int
    overlap: float  # mean share of the top-10 IDs both indexes return for the sampled queries
    with_view: int = 0  # rows of a Milvus copy whose view is known


def migrate_index(
    source: Path,
    target: Path,
    backend: str,
    *,
    uri: str | None = None,
    chunk: int = 4096,
    check_queries: int = 32,
    catalog: Catalog | None = None,
) -> MigrationResult:
    """Copy the index in ``source`` to ``target`` on ``backend`` (``faiss`` or ``milvus``).

    Args:
        uri: Milvus: a ``.db`` file (Milvus Lite) or ``http://host:19530`` (default ``<target>/milvus.db``).
        catalog: Milvus: the store's catalog, for the views clips declared (else views come from the
            embeddings folder's view probabilities, else stay ``""``).

    Raises:
        VectorIndexError: an unknown backend, the same backend as the source, a target that exists.
    """
    if backend not in ("faiss", "milvus"):
        raise VectorIndexError(f"Unknown backend '{backend}'. Available: ['faiss', 'milvus']")
    if (target / MANIFEST).exists():
        raise VectorIndexError(f"an index already exists at {target}; choose another name or remove it")
    loaded, manifest = load_index(source, milvus_token=os.environ.get(TOKEN_ENV))
    index: Any = loaded  # both back-ends read vectors back by ID (ids(), get_vectors()), beyond the protocol
    if manifest.backend == backend:
        raise VectorIndexError(f"'{source.name}' is already a {backend} index")
    ids = np.asarray(index.ids(), np.int64)
    copy: VectorIndex
    params: dict[str, Any] | None = None
    with_view = 0
    if backend == "faiss":
        from rag.index.faiss_index import build_index

        pieces = [index.get_vectors(ids[i : i + chunk]) for i in range(0, len(ids), chunk)]
        vectors = np.concatenate(pieces) if pieces else np.zeros((0, manifest.dim), np.float32)
        copy = build_index(vectors.astype(np.float32), ids, kind=manifest.kind)
    else:
        from rag.index.attributes import index_attributes
        from rag.index.milvus_index import MilvusIndex, collection_name

        attributes = index_attributes(manifest.source, ids, catalog=catalog, embeddings_dir=manifest.embeddings_dir)
        with_view = int(np.count_nonzero(attributes["view"] != ""))

        target.mkdir(parents=True, exist_ok=True)
        where = uri or str(target / "milvus.db")
        milvus = MilvusIndex(
            where, collection_name(manifest.name), manifest.dim, manifest.kind, token=os.environ.get(TOKEN_ENV)
        )
        for i in range(0, len(ids), chunk):
            part = ids[i : i + chunk]
            rows = {key: values[i : i + chunk] for key, values in attributes.items()}
            milvus.add(part, index.get_vectors(part).astype(np.float32), attributes=rows)
        params = dict(milvus.params)
        if uri is None:
            params["uri"] = "milvus.db"  # relative to the index folder, so the workspace can move
        copy = milvus
    if len(copy) != len(ids):
        raise VectorIndexError(f"the copy holds {len(copy)} vectors, the source {len(ids)}")
    overlap = _overlap(index, copy, ids, check_queries)
    save_index(
        copy,
        target,
        manifest_for(
            copy,
            name=target.name,
            encoder=manifest.encoder,
            checkpoint_sha256=manifest.checkpoint_sha256,
            source=manifest.source,
            preprocessing=manifest.preprocessing,
            embeddings_dir=manifest.embeddings_dir,
            build_params=params,
        ),
    )
    return MigrationResult(source, target, backend, len(copy), overlap, with_view)


def _overlap(a: Any, b: VectorIndex, ids: np.ndarray, n: int) -> float:
    if not len(ids):
        return 1.0
    rng = np.random.default_rng(0)
    sample = ids[rng.choice(len(ids), size=min(n, len(ids)), replace=False)]
    queries = a.get_vectors(sample).astype(np.float32)
    k = min(10, len(ids))
    _, hits_a = a.search(queries, k)
    _, hits_b = b.search(queries, k)
    return float(np.mean([len(set(x.tolist()) & set(y.tolist())) / k for x, y in zip(hits_a, hits_b, strict=True)]))
