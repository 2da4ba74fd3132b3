"""FAISS vector indexes: exact (``flat``), graph (``hnsw``) and inverted-file (``ivf_flat``, ``ivf_pq``) kinds.

All kinds score by inner product on L2-normalised vectors (cosine similarity) and keep the caller's int64
IDs (store row IDs):

- ``flat``: ``IndexIDMap2(IndexFlatIP)``: exact; ``remove_ids`` compacts in place.
- ``hnsw``: ``IndexHNSWFlat`` (M=32, efConstruction=200, efSearch per search). HNSW graphs cannot drop
  nodes, so this class maps graph positions to IDs itself: a removed or updated item becomes a tombstone
  (its position maps to -1) that every search excludes through its ``IDSelector``; when tombstones exceed
  ``compact_ratio`` of the graph, the graph is rebuilt from the live vectors (:meth:`FaissIndex.compact`).
- ``ivf_flat`` / ``ivf_pq``: ``IndexIVFFlat`` / ``IndexIVFPQ`` with ``add_with_ids`` and a hash-table
  direct map (``reconstruct`` and ``remove_ids`` by ID, no rebuild). ``ivf_pq`` keeps exact float32
  copies in an ``IndexIDMap2(IndexFlatIP)`` beside the codes when ``refine_factor`` > 0 and re-ranks
  ``max(refine_factor * k, 50)`` PQ candidates by exact inner product.

Filters run inside the search: the allowed (or excluded) IDs become an ``IDSelectorBatch`` (or
``IDSelectorNot``) in the search parameters, so the index only ever collects matching items. When at
most ``exact_below`` items pass a filter, they are scored exactly from their stored vectors instead;
when an approximate search still collects fewer than ``k`` matches while more exist (HNSW or IVF under
a restrictive filter), those queries are re-run exhaustively over the matching items. Either way a
search returns ``k`` hits whenever ``k`` items pass the filter.

This module holds :class:`FaissIndex` (the state: structures, IDs, memory mapping) and :func:`build_index`;
the parameters and choice of kind are in :mod:`rag.index.faiss_params`, the calls into FAISS for each kind in
:mod:`rag.index.faiss_kinds`, the HNSW tombstones in :mod:`rag.index.faiss_nodes`, filters and selectors in
:mod:`rag.index.faiss_select`, and the files in :mod:`rag.index.faiss_files`.

FAISS is imported when an index is created or loaded, never when these modules are imported.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from rag.core.errors import IndexInputError, VectorIndexError
from rag.index._arrays import check_ids, check_k, check_vectors, empty_results, members, tidy, topk_exact
from rag.index.faiss_files import index_mtime, read_index_files, read_into_memory, write_index_files
from rag.index.faiss_kinds import (
    ADD_CHUNK,
    RERANK_MIN,
    new_exact,
    new_hnsw,
    rebuild_hnsw,
    remove_ids,
    rerank,
    search_exact,
    search_hnsw,
    search_ivf,
    train_ivf,
    trained_params,
)
from rag.index.faiss_nodes import HnswNodes
from rag.index.faiss_params import (
    DEVICES,
    FLAT_BELOW,
    IVF_PQ_FROM,
    KINDS,
    RELEVANT,
    FaissParams,
    check_device,
    check_params,
    choose_kind,
    default_nlist,
    default_nprobe,
    default_pq_m,
    import_faiss,
    sees_gpu,
)
from rag.index.faiss_select import check_filter, match_filter, search_selector
from rag.index.protocol import SearchFilter

__all__ = [
    "DEVICES",
    "FLAT_BELOW",
    "IVF_PQ_FROM",
    "KINDS",
    "FaissIndex",
    "FaissParams",
    "build_index",
    "choose_kind",
    "default_nlist",
    "default_nprobe",
    "default_pq_m",
]

log = logging.getLogger(__name__)


class FaissIndex:
    """A FAISS index with stable int64 IDs, in-search filters and deletion (see the module docstring).

    Args:
        dim: vector dimension.
        kind: ``flat``, ``hnsw``, ``ivf_flat`` or ``ivf_pq``.
        device: ``cpu``; ``auto`` or ``cuda`` also search flat / IVF kinds on the first GPU when FAISS sees
            one (``faiss-gpu``); ``cuda`` without a GPU is an error.
        params: see :class:`FaissParams`.

    IVF kinds are trained by :func:`build_index`, by :meth:`train`, or on the first :meth:`add`.
    An index loaded memory-mapped is read-only on disk; the first change reads a private copy into memory.
    Not safe for concurrent changes from several threads.
    """

    def __init__(self, dim: int, kind: str = "flat", *, device: str = "cpu", **params: Any) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise IndexInputError(f"dim must be a positive integer, got {dim!r}")
        self._params = check_params(kind, params)
        self._dim = dim
        self._kind = kind
        self._device = check_device(device)
        self._index: Any = None
        self._refine: Any = None
        self._ids = np.zeros(0, dtype=np.int64)  # flat / ivf_*: sorted live IDs
        self._nodes = HnswNodes()  # hnsw: graph position -> ID, tombstones
        self._mapped: tuple[Path, float] | None = None  # folder memory-mapped from, index file mtime
        self._gpu: Any = None
        self._gpu_resources: Any = None
        import_faiss()  # fails here when FAISS is missing
        if kind == "flat":
            self._index = new_exact(dim)
        elif kind == "hnsw":
            self._index = new_hnsw(self._dim, self._params)

    # Properties ------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self._dim

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def backend(self) -> str:
        return "faiss"

    @property
    def device(self) -> str:
        return self._device

    @property
    def is_trained(self) -> bool:
        return self._index is not None and bool(self._index.is_trained)

    @property
    def is_mapped(self) -> bool:
        """True while the index data is memory-mapped from disk (read-only)."""
        return self._mapped is not None

    @property
    def params(self) -> dict[str, Any]:
        """Build and search parameters, with automatic values resolved once the index is trained."""
        dumped = self._params.model_dump()
        out = {key: dumped[key] for key in RELEVANT[self._kind]}
        if self._kind in ("ivf_flat", "ivf_pq") and self._index is not None:
            out.update(trained_params(self._kind, self._index), nprobe=self._nprobe())
        return out

    @property
    def tombstones(self) -> int:
        """hnsw: graph nodes of removed or replaced items not yet compacted away (0 for other kinds)."""
        return int(self._nodes.dead().size) if self._kind == "hnsw" else 0

    def __len__(self) -> int:
        return int(self._live_ids().size)

    def __repr__(self) -> str:
        return f"FaissIndex(kind={self._kind!r}, dim={self._dim}, n={len(self)}, device={self._device!r})"

    def ids(self) -> np.ndarray:
        """Returns: (n,) int64, the IDs in the index, sorted."""
        return self._live_ids().copy()

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, int | np.integer):
            return False
        return bool(members(self._live_ids(), np.array([item], dtype=np.int64))[0])

    def set_search_params(self, **params: Any) -> None:
        """Change search-time parameters: ``ef_search`` (hnsw), ``nprobe`` (ivf_*), ``refine_factor`` (ivf_pq,
        when built with copies) and ``exact_below``."""
        allowed = {"ef_search", "nprobe", "refine_factor", "exact_below"}
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise VectorIndexError(f"Not search-time parameters: {unknown}. Allowed: {sorted(allowed)}")
        if self._refine is None and params.get("refine_factor"):
            raise VectorIndexError(
                "refine_factor needs the float32 copies an ivf_pq index keeps only when built with it"
            )
        self._params = check_params(self._kind, {**self._params.model_dump(), **params})
        if self._gpu is not None and "nprobe" in params:  # pragma: no cover - needs a GPU
            self._gpu.nprobe = self._nprobe()

    # Building --------------------------------------------------------------------------------
    def train(self, vectors: np.ndarray, *, n_total: int | None = None) -> None:
        """Train an IVF kind's coarse quantizer (and PQ codebooks) on a sample of ``vectors``.

        Args:
            vectors: (n, dim) float32; L2-normalised here when not already.
            n_total: how many vectors the index will hold (sizes ``nlist``); default ``len(vectors)``.
        """
        if self._kind not in ("ivf_flat", "ivf_pq"):
            return
        if self._index is not None and len(self) > 0:
            raise VectorIndexError(f"This {self._kind} index already holds {len(self)} vectors; build a new one")
        self._index = train_ivf(self._kind, self._dim, self._params, vectors, n_total)
        if self._kind == "ivf_pq" and self._params.refine_factor > 0:
            self._refine = new_exact(self._dim)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add new items: ``ids`` (n,) int64 unique and new; ``vectors`` (n, dim) float32, L2-normalised here."""
        ids64 = check_ids(ids)
        x = check_vectors(vectors, self._dim, rows=ids64.size)
        if ids64.size == 0:
            return
        present = members(self._live_ids(), ids64)
        if present.any():
            dup = ids64[present]
            raise IndexInputError(
                f"IDs already in the index: {dup[:5].tolist()}{' ...' if dup.size > 5 else ''} ({dup.size} in all); "
                "use update() to replace their vectors"
            )
        self._writable()
        if self._kind in ("ivf_flat", "ivf_pq") and not self.is_trained:
            self.train(x)
        for start in range(0, ids64.size, ADD_CHUNK):
            self._add_unchecked(ids64[start : start + ADD_CHUNK], x[start : start + ADD_CHUNK])

    def _add_unchecked(self, ids: np.ndarray, x: np.ndarray) -> None:
        if self._kind == "hnsw":
            self._index.add(x)
            self._nodes.append(ids)
        else:
            self._index.add_with_ids(x, ids)
            if self._refine is not None:
                self._refine.add_with_ids(x, ids)
            self._ids = np.union1d(self._ids, ids)
        self._gpu = None

    def remove(self, ids: np.ndarray) -> int:
        """Remove items; IDs not in the index are ignored. Returns how many were removed."""
        arr = np.asarray(ids)
        if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            raise IndexInputError(f"ids must be a 1-D array of int64 IDs, got dtype {arr.dtype} and shape {arr.shape}")
        wanted = np.unique(arr.astype(np.int64, copy=False))
        gone = wanted[members(self._live_ids(), wanted)]
        if gone.size == 0:
            return 0
        self._writable()
        self._remove_unchecked(gone)
        self._maybe_compact()
        return int(gone.size)

    def _remove_unchecked(self, gone: np.ndarray) -> None:
        if self._kind == "hnsw":
            self._nodes.bury(gone)
        else:
            remove_ids(self._kind, self._index, self._refine, gone)
            self._ids = np.setdiff1d(self._ids, gone, assume_unique=True)
        self._gpu = None

    def update(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Replace the vectors of IDs already in the index (same checks as :meth:`add`)."""
        ids64 = check_ids(ids)
        x = check_vectors(vectors, self._dim, rows=ids64.size)
        if ids64.size == 0:
            return
        known = members(self._live_ids(), ids64)
        if not known.all():
            miss = ids64[~known]
            raise IndexInputError(
                f"IDs not in the index: {miss[:5].tolist()}{' ...' if miss.size > 5 else ''} ({miss.size} in all); "
                "use add() for new items"
            )
        self._writable()
        self._remove_unchecked(np.sort(ids64))
        self._add_unchecked(ids64, x)
        self._maybe_compact()

    def compact(self) -> int:
        """hnsw: rebuild the graph from the live vectors, dropping tombstones. Returns how many were dropped.

        Costs a full HNSW build (minutes for a million vectors); other kinds need no compaction (returns 0).
        """
        if self._kind != "hnsw":
            return 0
        dead = self._nodes.dead().size
        if dead == 0:
            return 0
        alive = self._nodes.alive()
        log.info("compacting hnsw: %d live nodes, %d tombstones", alive.size, dead)
        self._index = rebuild_hnsw(self._index, alive, self._dim, self._params)
        self._nodes = HnswNodes(self._nodes.labels[alive])
        self._mapped = None
        return int(dead)

    def _maybe_compact(self) -> None:
        ratio = self._params.compact_ratio
        if (
            self._kind == "hnsw"
            and ratio is not None
            and len(self._nodes)
            and self._nodes.dead().size > ratio * len(self._nodes)
        ):
            self.compact()

    # Reading ---------------------------------------------------------------------------------
    def get_vectors(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors of ``ids`` (n,) int64. Returns: (n, dim) float32, L2-normalised.

        Exact for every kind except ``ivf_pq`` with ``refine_factor=0`` (PQ-decoded approximations).
        """
        ids64 = np.asarray(ids, dtype=np.int64).reshape(-1)
        known = members(self._live_ids(), ids64)
        if not known.all():
            raise IndexInputError(f"IDs not in the index: {ids64[~known][:5].tolist()}")
        return self._vectors_of(ids64)

    def _vectors_of(self, ids: np.ndarray) -> np.ndarray:
        if ids.size == 0:
            return np.zeros((0, self._dim), np.float32)
        keys = self._nodes.positions(ids) if self._kind == "hnsw" else ids
        source = self._index if self._refine is None else self._refine  # ivf_pq: the exact copies, not PQ codes
        return np.ascontiguousarray(source.reconstruct_batch(keys), dtype=np.float32)

    def search(
        self, queries: np.ndarray, k: int, *, filter: SearchFilter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best items per query (see :meth:`rag.index.protocol.VectorIndex.search`).

        Args:
            queries: (q, dim) float32, L2-normalised here when not already.

        Returns:
            scores (q, k) float32 inner products, best first; ids (q, k) int64; ``-inf`` / ``-1`` padding only
            when fewer than ``k`` items pass the filter.
        """
        k = check_k(k)
        q = check_vectors(queries, self._dim, name="queries")
        filter = check_filter(filter)
        if q.shape[0] == 0 or len(self) == 0:
            return empty_results(q.shape[0], k)
        live = self._live_ids()
        found = match_filter(live, filter)
        if found.count == 0:
            return empty_results(q.shape[0], k)
        if found.count <= self._params.exact_below and found.narrows:
            match = found.ids(live)
            return topk_exact(q, k, match, self._vectors_of(match))
        keep: list[Any] = []
        sel = search_selector(found, keep, nodes=self._nodes if self._kind == "hnsw" else None)
        scores, ids = self._search_native(q, k, sel)
        short = (ids >= 0).sum(axis=1) < min(k, found.count)
        if short.any():
            s2, i2 = self._search_exhaustive(q[short], k, sel)
            scores[short], ids[short] = s2, i2
        return tidy(scores, ids)

    # Internals -------------------------------------------------------------------------------
    def _nprobe(self) -> int:
        nlist = int(self._index.nlist)
        return int(min(nlist, self._params.nprobe or default_nprobe(nlist)))

    def _gpu_index(self) -> Any:
        """The GPU copy used for unfiltered flat / IVF searches, or None (CPU only, HNSW, or no GPU)."""
        if self._device == "cpu" or self._kind == "hnsw" or self._index is None or not sees_gpu():
            return None
        if self._gpu is None:  # pragma: no cover - needs faiss-gpu and a CUDA device
            faiss = import_faiss()
            if self._gpu_resources is None:
                self._gpu_resources = faiss.StandardGpuResources()
            self._gpu = faiss.index_cpu_to_gpu(self._gpu_resources, 0, self._index)
            if self._kind != "flat":
                self._gpu.nprobe = self._nprobe()
        return self._gpu

    def _live_ids(self) -> np.ndarray:
        return self._nodes.live_ids() if self._kind == "hnsw" else self._ids

    def _search_native(self, q: np.ndarray, k: int, sel: Any) -> tuple[np.ndarray, np.ndarray]:
        if self._kind == "hnsw":
            return search_hnsw(self._index, self._nodes.labels, q, k, sel, ef_search=max(self._params.ef_search, k))
        gpu = self._gpu_index() if sel is None else None
        if self._kind == "flat":
            return search_exact(self._index, q, k, sel, gpu=gpu)
        kk = max(k * self._params.refine_factor, RERANK_MIN) if self._refine is not None else k
        scores, ids = search_ivf(self._index, q, min(kk, max(len(self), k)), sel, nprobe=self._nprobe(), gpu=gpu)
        return (scores, ids) if self._refine is None else rerank(self._refine, q, k, ids)

    def _search_exhaustive(self, q: np.ndarray, k: int, sel: Any) -> tuple[np.ndarray, np.ndarray]:
        """Exact (or, for ivf_pq without copies, every-list) search over the items ``sel`` accepts."""
        if self._kind == "hnsw":
            return search_hnsw(self._index, self._nodes.labels, q, k, sel, ef_search=None)
        if self._kind == "flat" or self._refine is not None:
            return search_exact(self._index if self._kind == "flat" else self._refine, q, k, sel)
        return search_ivf(self._index, q, k, sel, nprobe=int(self._index.nlist))

    def _writable(self) -> None:
        """Before a change: replace a memory-mapped (read-only) index by a private in-memory copy."""
        if self._mapped is None:
            return
        index, refine = read_into_memory(*self._mapped, refine=self._refine is not None)
        self._index = index
        if refine is not None:
            self._refine = refine
        self._mapped = None

    # Persistence -----------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write ``index.faiss`` (+ ``refine.faiss``) and the ID table (``ids.npy`` or ``labels.npy``) to ``folder``.

        Each file is written under a temporary name and renamed, so a reader never sees a partial file
        and an index memory-mapped from the same folder keeps working.
        """
        if self._index is None:
            raise VectorIndexError(f"This {self._kind} index is empty and untrained; add vectors before saving")
        folder = Path(folder)
        table = self._nodes.labels if self._kind == "hnsw" else self._ids
        write_index_files(folder, self._index, self._refine, table, labels=self._kind == "hnsw")
        if self._mapped is not None and self._mapped[0].resolve() == folder.resolve():
            self._mapped = (self._mapped[0], index_mtime(folder))

    @classmethod
    def load(
        cls,
        folder: Path,
        *,
        kind: str,
        dim: int,
        params: dict[str, Any] | None = None,
        mmap: bool = True,
        device: str = "cpu",
    ) -> FaissIndex:
        """Load what :meth:`save` wrote. With ``mmap`` the data stays on disk, paged in as searches touch it.

        Raises:
            VectorIndexError: a file is missing or unreadable, or does not match ``kind`` / ``dim``.
        """
        folder = Path(folder)
        params = dict(params or {})
        for resolved in ("nlist", "pq_m", "pq_nbits"):  # fixed by the trained index itself
            params.pop(resolved, None)
        self = cls(dim, kind, device=device, **params)
        self._index, self._refine, table = read_index_files(folder, kind=kind, dim=dim, mmap=mmap)
        if kind == "hnsw":
            self._nodes = HnswNodes(table)
        else:
            self._ids = table
        if mmap:
            self._mapped = (folder, index_mtime(folder))
        return self


def build_index(
    vectors: np.ndarray,
    ids: np.ndarray,
    *,
    kind: str = "auto",
    device: str = "cpu",
    progress: bool = False,
    **params: Any,
) -> FaissIndex:
    """Build a FAISS index over ``vectors``.

    Args:
        vectors: (n, dim) float32; L2-normalised here when not already.
        ids: (n,) int64 unique, non-negative store row IDs.
        kind: ``auto`` (:func:`choose_kind`), ``flat``, ``hnsw``, ``ivf_flat`` or ``ivf_pq``.
        device: ``cpu``, ``auto`` or ``cuda`` (see :class:`FaissIndex`).
        progress: show a progress bar while adding.
        params: see :class:`FaissParams`.
    """
    from tqdm import tqdm

    ids64 = check_ids(ids)
    x = np.asarray(vectors)
    if x.ndim != 2:
        raise IndexInputError(f"vectors must have shape (n, dim), got {x.shape}")
    x = check_vectors(x, x.shape[1], rows=ids64.size)
    if kind == "auto":
        kind = choose_kind(ids64.size)
    index = FaissIndex(x.shape[1], kind, device=device, **params)
    if ids64.size == 0:
        return index
    if kind in ("ivf_flat", "ivf_pq"):
        index.train(x, n_total=ids64.size)
    with tqdm(total=ids64.size, desc=f"index {kind}", unit="vec", disable=not progress) as bar:
        for start in range(0, ids64.size, ADD_CHUNK):
            index._add_unchecked(ids64[start : start + ADD_CHUNK], x[start : start + ADD_CHUNK])
            bar.update(min(ADD_CHUNK, ids64.size - start))
    return index
