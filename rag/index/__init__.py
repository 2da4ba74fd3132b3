"""Index stage: k-nearest-neighbour indexes over the embeddings of ``rag embed``, with manifests.

    from rag.index import SearchFilter, build_index, load_index, manifest_for, save_index

    index = build_index(vectors, ids, kind="auto")                   # FAISS: flat / hnsw / ivf_flat / ivf_pq
    scores, hits = index.search(queries, 10, filter=SearchFilter(allowed_ids=same_patient_clips))
    save_index(index, folder, manifest_for(index, name="clips", encoder=enc, checkpoint_sha256=sha, source="clips"))
    index, manifest = load_index(folder, expect_encoder=enc, expect_checkpoint_sha256=sha)   # memory-mapped

Milvus (Lite or a server) implements the same :class:`VectorIndex` protocol (:class:`MilvusIndex`).
Nothing heavy is imported with this package: names load on first use, FAISS and pymilvus later still.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.core.lazy import lazy_exports

if TYPE_CHECKING:
    from rag.index.faiss_index import FaissIndex, FaissParams, build_index, choose_kind
    from rag.index.manifest import IndexManifest
    from rag.index.milvus_index import MilvusIndex
    from rag.index.protocol import SearchFilter, VectorIndex
    from rag.index.store import load_index, manifest_for, read_manifest, save_index

_LAZY: dict[str, str] = {
    "SearchFilter": "rag.index.protocol",
    "VectorIndex": "rag.index.protocol",
    "FaissIndex": "rag.index.faiss_index",
    "FaissParams": "rag.index.faiss_index",
    "build_index": "rag.index.faiss_index",
    "choose_kind": "rag.index.faiss_index",
    "MilvusIndex": "rag.index.milvus_index",
    "IndexManifest": "rag.index.manifest",
    "load_index": "rag.index.store",
    "manifest_for": "rag.index.store",
    "read_manifest": "rag.index.store",
    "save_index": "rag.index.store",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())


__all__ = [
    "FaissIndex",
    "FaissParams",
    "IndexManifest",
    "MilvusIndex",
    "SearchFilter",
    "VectorIndex",
    "build_index",
    "choose_kind",
    "load_index",
    "manifest_for",
    "read_manifest",
    "save_index",
]
