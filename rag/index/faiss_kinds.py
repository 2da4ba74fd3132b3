"""The calls into FAISS for each index kind: creating flat and HNSW indexes, training IVF ones, removing IDs,
rebuilding an HNSW graph without its tombstones, searching each kind under an ``IDSelector``, and re-ranking
IVF-PQ candidates exactly.

These functions hold no state: :class:`rag.index.faiss_index.FaissIndex` owns the structures, their IDs and
the filters, and says which of these to call.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from rag.core.errors import IndexInputError, VectorIndexError
from rag.index._arrays import check_vectors, empty_results, tidy
from rag.index.faiss_params import FaissParams, default_nlist, default_pq_m, import_faiss

log = logging.getLogger(__name__)

ADD_CHUNK = 100_000
"""Vectors added to a FAISS index per call."""
RERANK_MIN = 50
"""ivf_pq with float32 copies: PQ candidates re-ranked at least (``max(refine_factor * k, RERANK_MIN)``)."""
_RERANK_CHUNK = 256

Results = tuple[np.ndarray, np.ndarray]
"""Scores (q, k) float32 and IDs (q, k) int64 of a search, as FAISS returns them."""


def new_exact(dim: int) -> Any:
    """An empty exact index keeping the caller's IDs, ``IndexIDMap2(IndexFlatIP)``: a flat index, or the float32
    copies beside an ivf_pq index's codes."""
    faiss = import_faiss()
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def new_hnsw(dim: int, p: FaissParams) -> Any:
    """An empty ``IndexHNSWFlat`` (inner product) with the graph parameters of ``p``."""
    faiss = import_faiss()
    index = faiss.IndexHNSWFlat(dim, p.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = p.ef_construction
    index.hnsw.efSearch = p.ef_search
    return index


def trained_params(kind: str, index: Any) -> dict[str, int]:
    """ivf_*: the parameters a trained ``index`` fixed itself: ``nlist`` (and ``pq_m``, ``pq_nbits`` for ivf_pq)."""
    out = {"nlist": int(index.nlist)}
    if kind == "ivf_pq":
        out.update(pq_m=int(index.pq.M), pq_nbits=int(index.pq.nbits))
    return out


def rebuild_hnsw(index: Any, alive: np.ndarray, dim: int, p: FaissParams) -> Any:
    """A new HNSW graph holding the nodes of ``index`` at the positions ``alive``, in that order."""
    vectors = index.reconstruct_batch(alive) if alive.size else np.zeros((0, dim), np.float32)
    graph = new_hnsw(dim, p)
    for start in range(0, alive.size, ADD_CHUNK):
        graph.add(np.ascontiguousarray(vectors[start : start + ADD_CHUNK]))
    return graph


def train_ivf(kind: str, dim: int, p: FaissParams, vectors: np.ndarray, n_total: int | None) -> Any:
    """An empty ``IndexIVFFlat`` / ``IndexIVFPQ`` (``kind``) with a hash-table direct map, trained on a sample of
    ``vectors`` (L2-normalised here when not already); ``n_total`` (default ``len(vectors)``) sizes ``nlist``."""
    x = check_vectors(vectors, dim)
    if x.shape[0] == 0:
        raise IndexInputError(f"{kind} needs training vectors; got none")
    faiss = import_faiss()
    nlist = p.nlist or default_nlist(n_total or x.shape[0])
    size = min(x.shape[0], p.train_size or max(40 * nlist, 16_384))
    if size < nlist:
        raise IndexInputError(
            f"{kind} with nlist={nlist} needs at least {nlist} training vectors, got {size}; "
            "lower nlist or use kind='flat'"
        )
    rng = np.random.default_rng(p.seed)
    sample = x if size == x.shape[0] else x[np.sort(rng.choice(x.shape[0], size, replace=False))]
    quantizer = faiss.IndexFlatIP(dim)
    if kind == "ivf_flat":
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    else:
        pq_m = p.pq_m or default_pq_m(dim)
        if dim % pq_m:
            raise VectorIndexError(f"pq_m={pq_m} must divide dim={dim}; try {default_pq_m(dim)}")
        nbits = min(p.pq_nbits, int(math.log2(max(size / 39, 1))))
        if nbits < 4:
            raise IndexInputError(
                f"ivf_pq needs at least {16 * 39} training vectors for 4-bit codes, got {size}; use ivf_flat or flat"
            )
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, pq_m, nbits, faiss.METRIC_INNER_PRODUCT)
        index.pq.cp.seed = p.seed
    index.cp.seed = p.seed
    index.cp.niter = 10
    index.own_fields = True
    quantizer.this.disown()
    index.train(sample)
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    log.info("trained %s: nlist=%d on %d vectors", kind, nlist, size)
    return index


def remove_ids(kind: str, index: Any, refine: Any, gone: np.ndarray) -> None:
    """Remove the sorted IDs ``gone``, all present, from a flat or IVF ``index`` (and its copies ``refine``)."""
    faiss = import_faiss()
    if kind == "flat":
        removed = index.remove_ids(faiss.IDSelectorBatch(gone))
    else:  # the IVF hash-table direct map removes only through an IDSelectorArray
        removed = index.remove_ids(faiss.IDSelectorArray(gone))
        if refine is not None:
            refine.remove_ids(faiss.IDSelectorBatch(gone))
    if removed != gone.size:  # pragma: no cover - would mean the ID bookkeeping is broken
        raise VectorIndexError(f"FAISS removed {removed} of {gone.size} IDs; rebuild the index")


def search_exact(index: Any, q: np.ndarray, k: int, sel: Any, *, gpu: Any = None) -> Results:
    """Search an exact index (flat, the float32 copies of ivf_pq, an HNSW graph's storage) under ``sel``, or its
    GPU copy ``gpu`` (only for searches without a selector)."""
    if gpu is not None:  # pragma: no cover - needs a GPU
        return gpu.search(q, k)  # type: ignore[no-any-return]
    params = import_faiss().SearchParameters(sel=sel) if sel is not None else None
    return index.search(q, k, params=params)  # type: ignore[no-any-return]


def search_hnsw(index: Any, labels: np.ndarray, q: np.ndarray, k: int, sel: Any, *, ef_search: int | None) -> Results:
    """Search an HNSW graph under ``sel`` (in graph positions) with ``ef_search``, or exhaustively over its stored
    vectors when ``ef_search`` is None; graph positions become IDs through ``labels``."""
    faiss = import_faiss()
    if ef_search is None:
        scores, pos = search_exact(faiss.downcast_index(index.storage), q, k, sel)
    else:
        params = faiss.SearchParametersHNSW(efSearch=ef_search)
        if sel is not None:
            params.sel = sel
        scores, pos = index.search(q, k, params=params)
    return scores, np.where(pos >= 0, labels[np.maximum(pos, 0)], -1)


def search_ivf(index: Any, q: np.ndarray, k: int, sel: Any, *, nprobe: int, gpu: Any = None) -> Results:
    """Search an IVF index under ``sel``, scanning ``nprobe`` lists, or its GPU copy ``gpu`` (no selector)."""
    params = import_faiss().SearchParametersIVF(nprobe=nprobe)
    if sel is not None:
        params.sel = sel
    if gpu is not None:  # pragma: no cover - needs a GPU
        return gpu.search(q, k)  # type: ignore[no-any-return]
    return index.search(q, k, params=params)  # type: ignore[no-any-return]


def rerank(refine: Any, q: np.ndarray, k: int, cand: np.ndarray) -> Results:
    """Exact inner products of the PQ candidates ``cand`` (q, kk) from the float32 copies ``refine``; top ``k``."""
    scores_out, ids_out = empty_results(q.shape[0], k)
    for start in range(0, q.shape[0], _RERANK_CHUNK):
        c = cand[start : start + _RERANK_CHUNK]
        uniq = np.unique(c[c >= 0])
        if uniq.size == 0:
            continue
        vecs = refine.reconstruct_batch(uniq)
        rows = np.searchsorted(uniq, np.maximum(c, 0))
        sims = np.einsum("qd,qcd->qc", q[start : start + _RERANK_CHUNK], vecs[rows])
        sims[c < 0] = -np.inf
        take = min(k, c.shape[1])
        order = np.argsort(-sims, axis=1, kind="stable")[:, :take]
        scores_out[start : start + c.shape[0], :take] = np.take_along_axis(sims, order, axis=1)
        ids_out[start : start + c.shape[0], :take] = np.take_along_axis(c, order, axis=1)
    return tidy(scores_out, ids_out)
