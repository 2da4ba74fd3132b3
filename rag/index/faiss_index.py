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

FAISS is imported when an index is created or loaded, never when this module is imported.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rag.core.errors import IndexInputError, VectorIndexError
from rag.core.validation import format_validation_error
from rag.index._arrays import check_ids, check_k, check_vectors, empty_results, members, tidy, topk_exact
from rag.index.protocol import SearchFilter

log = logging.getLogger(__name__)

KINDS = ("flat", "hnsw", "ivf_flat", "ivf_pq")
DEVICES = ("cpu", "auto", "cuda")

FLAT_BELOW = 20_000
"""``choose_kind``: below this many vectors, exact search (a few ms per query, nothing to train or tune)."""
IVF_PQ_FROM = 10_000_000
"""``choose_kind``: from this many vectors, IVF-PQ (64 bytes of codes per 512-d vector in memory, exact copies
memory-mapped for re-ranking); below it, IVF-Flat (20 GB of float32 at 10M x 512)."""

INDEX_FILE = "index.faiss"
REFINE_FILE = "refine.faiss"
IDS_FILE = "ids.npy"
LABELS_FILE = "labels.npy"
_SIDE_FILES = (INDEX_FILE, REFINE_FILE, IDS_FILE, LABELS_FILE)
_ADD_CHUNK = 100_000
_RERANK_CHUNK = 256
_RERANK_MIN = 50
_BITMAP_MIN = 50_000


class FaissParams(BaseModel):
    """Build and search parameters of a :class:`FaissIndex` (each applies to the kinds it names)."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    hnsw_m: int = Field(32, ge=4, le=256, description="hnsw: graph neighbours per node (M).")
    ef_construction: int = Field(200, ge=8, le=4096, description="hnsw: candidate list size while building.")
    ef_search: int = Field(128, ge=1, le=65536, description="hnsw: candidate list size while searching (>= k).")
    nlist: int | None = Field(None, ge=1, description="ivf_*: inverted lists; default round(2*sqrt(n)).")
    nprobe: int | None = Field(None, ge=1, description="ivf_*: lists scanned per query; default see default_nprobe.")
    pq_m: int | None = Field(None, ge=1, description="ivf_pq: sub-quantizers (divides dim); default dim/8.")
    pq_nbits: int = Field(8, ge=4, le=12, description="ivf_pq: bits per sub-quantizer code.")
    refine_factor: int = Field(
        10,
        ge=0,
        le=64,
        description="ivf_pq: re-rank max(refine_factor*k, 50) candidates exactly (0: no float32 copies, no re-rank).",
    )
    train_size: int | None = Field(None, ge=1, description="ivf_*: training sample; default max(40*nlist, 16384).")
    exact_below: int = Field(
        4096, ge=0, description="Score exactly, from stored vectors, when at most this many items pass a filter."
    )
    compact_ratio: float | None = Field(
        0.3, gt=0.0, le=1.0, description="hnsw: rebuild the graph when tombstones exceed this share (None: never)."
    )
    seed: int = Field(0, description="Seed of the training sample and k-means.")


_COMMON = ("exact_below", "seed")
_RELEVANT = {
    "flat": _COMMON,
    "hnsw": ("hnsw_m", "ef_construction", "ef_search", "compact_ratio", *_COMMON),
    "ivf_flat": ("nlist", "nprobe", "train_size", *_COMMON),
    "ivf_pq": ("nlist", "nprobe", "pq_m", "pq_nbits", "refine_factor", "train_size", *_COMMON),
}


def default_nlist(n: int) -> int:
    """Inverted lists for ``n`` vectors: about 2*sqrt(n), and at least 39 training points per list."""
    return int(max(1, min(round(2 * math.sqrt(max(n, 1))), n // 39)))


def default_nprobe(nlist: int) -> int:
    """Lists scanned per query: about sqrt(nlist), at least 8 (all lists when there are fewer)."""
    return int(min(nlist, max(8, round(math.sqrt(nlist)))))


def default_pq_m(dim: int) -> int:
    """Sub-quantizers: the largest divisor of ``dim`` not above dim/8 (8 dimensions per code byte, 32x smaller)."""
    target = max(1, dim // 8)
    return next(m for m in range(target, 0, -1) if dim % m == 0)


def choose_kind(n: int) -> str:
    """The index kind for ``n`` vectors when ``kind="auto"``: ``flat`` below :data:`FLAT_BELOW` (20k),
    ``ivf_flat`` below :data:`IVF_PQ_FROM` (10M), else ``ivf_pq``.

    HNSW is never chosen automatically: on the 2-core reference machine it built 40-100x slower than
    IVF-Flat for no gain in latency or recall at the target recall (docs/search.md); ask for it by name.
    """
    if n < 0:
        raise IndexInputError(f"n must be >= 0, got {n}")
    if n < FLAT_BELOW:
        return "flat"
    if n < IVF_PQ_FROM:
        return "ivf_flat"
    return "ivf_pq"


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as e:  # pragma: no cover - faiss-cpu is a core dependency
        raise VectorIndexError(
            "FAISS is not installed; install faiss-cpu (`pip install faiss-cpu`) or, with CUDA 12, "
            "`pip install 'echo-rag[gpu]'`"
        ) from e
    return faiss


def _params(kind: str, params: dict[str, Any]) -> FaissParams:
    if kind not in KINDS:
        raise VectorIndexError(f"Unknown index kind '{kind}'. Available: {list(KINDS)} (or 'auto' in build_index)")
    try:
        return FaissParams(**params)
    except ValidationError as e:
        allowed = sorted(FaissParams.model_fields)
        problems = format_validation_error(e)
        raise VectorIndexError(f"Invalid FAISS index parameters ({problems}). Allowed parameters: {allowed}") from e


class FaissIndex:
    """A FAISS index with stable int64 IDs, in-search filters and deletion (see the module docstring).

    Args:
        dim: vector dimension.
        kind: ``flat``, ``hnsw``, ``ivf_flat`` or ``ivf_pq``.
        device: ``cpu``; ``auto`` or ``cuda`` also search flat / IVF kinds on the first GPU when FAISS sees
            one (``faiss-gpu-cu12``); ``cuda`` without a GPU is an error.
        params: see :class:`FaissParams`.

    IVF kinds are trained by :func:`build_index`, by :meth:`train`, or on the first :meth:`add`.
    An index loaded memory-mapped is read-only on disk; the first change reads a private copy into memory.
    Not safe for concurrent changes from several threads.
    """

    def __init__(self, dim: int, kind: str = "flat", *, device: str = "cpu", **params: Any) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise IndexInputError(f"dim must be a positive integer, got {dim!r}")
        self._params = _params(kind, params)
        self._dim = dim
        self._kind = kind
        self._device = self._check_device(device)
        self._index: Any = None
        self._refine: Any = None
        self._ids = np.zeros(0, dtype=np.int64)  # flat / ivf_*: sorted live IDs
        self._labels = np.zeros(0, dtype=np.int64)  # hnsw: graph position -> ID, -1 = tombstone
        self._lookup: tuple[np.ndarray, np.ndarray] | None = None  # hnsw: (sorted live IDs, their positions)
        self._dead: np.ndarray | None = None  # hnsw: tombstone positions
        self._mapped: tuple[Path, float] | None = None  # folder memory-mapped from, index file mtime
        self._gpu: Any = None
        self._gpu_resources: Any = None
        faiss = _faiss()
        if kind == "flat":
            self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        elif kind == "hnsw":
            self._index = self._new_hnsw()

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
        out = {key: dumped[key] for key in _RELEVANT[self._kind]}
        if self._kind in ("ivf_flat", "ivf_pq") and self._index is not None:
            out["nlist"] = int(self._index.nlist)
            out["nprobe"] = self._nprobe()
            if self._kind == "ivf_pq":
                out["pq_m"] = int(self._index.pq.M)
                out["pq_nbits"] = int(self._index.pq.nbits)
        return out

    @property
    def tombstones(self) -> int:
        """hnsw: graph nodes of removed or replaced items not yet compacted away (0 for other kinds)."""
        return int(self._dead_positions().size) if self._kind == "hnsw" else 0

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
        self._params = _params(self._kind, {**self._params.model_dump(), **params})
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
        x = check_vectors(vectors, self._dim)
        if x.shape[0] == 0:
            raise IndexInputError(f"{self._kind} needs training vectors; got none")
        faiss = _faiss()
        p = self._params
        nlist = p.nlist or default_nlist(n_total or x.shape[0])
        size = min(x.shape[0], p.train_size or max(40 * nlist, 16_384))
        if size < nlist:
            raise IndexInputError(
                f"{self._kind} with nlist={nlist} needs at least {nlist} training vectors, got {size}; "
                "lower nlist or use kind='flat'"
            )
        rng = np.random.default_rng(p.seed)
        sample = x if size == x.shape[0] else x[np.sort(rng.choice(x.shape[0], size, replace=False))]
        quantizer = faiss.IndexFlatIP(self._dim)
        if self._kind == "ivf_flat":
            index = faiss.IndexIVFFlat(quantizer, self._dim, nlist, faiss.METRIC_INNER_PRODUCT)
        else:
            pq_m = p.pq_m or default_pq_m(self._dim)
            if self._dim % pq_m:
                raise VectorIndexError(f"pq_m={pq_m} must divide dim={self._dim}; try {default_pq_m(self._dim)}")
            nbits = min(p.pq_nbits, int(math.log2(max(size / 39, 1))))
            if nbits < 4:
                raise IndexInputError(
                    f"ivf_pq needs at least {16 * 39} training vectors for 4-bit codes, got {size}; "
                    "use ivf_flat or flat"
                )
            index = faiss.IndexIVFPQ(quantizer, self._dim, nlist, pq_m, nbits, faiss.METRIC_INNER_PRODUCT)
            index.pq.cp.seed = p.seed
        index.cp.seed = p.seed
        index.cp.niter = 10
        index.own_fields = True
        quantizer.this.disown()
        index.train(sample)
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        self._index = index
        if self._kind == "ivf_pq" and p.refine_factor > 0:
            self._refine = faiss.IndexIDMap2(faiss.IndexFlatIP(self._dim))
        log.info("trained %s: nlist=%d on %d vectors", self._kind, nlist, size)

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
        for start in range(0, ids64.size, _ADD_CHUNK):
            self._add_unchecked(ids64[start : start + _ADD_CHUNK], x[start : start + _ADD_CHUNK])

    def _add_unchecked(self, ids: np.ndarray, x: np.ndarray) -> None:
        if self._kind == "hnsw":
            self._index.add(x)
            self._labels = np.concatenate([self._labels, ids])
            self._lookup = None
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
        faiss = _faiss()
        if self._kind == "hnsw":
            self._labels[self._positions(gone)] = -1
            self._lookup = None
            self._dead = None
        else:
            if self._kind == "flat":
                removed = self._index.remove_ids(faiss.IDSelectorBatch(gone))
            else:  # the IVF hash-table direct map removes only through an IDSelectorArray
                removed = self._index.remove_ids(faiss.IDSelectorArray(gone))
                if self._refine is not None:
                    self._refine.remove_ids(faiss.IDSelectorBatch(gone))
            if removed != gone.size:  # pragma: no cover - would mean the ID bookkeeping is broken
                raise VectorIndexError(f"FAISS removed {removed} of {gone.size} IDs; rebuild the index")
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
        dead = self._dead_positions().size
        if dead == 0:
            return 0
        alive = np.flatnonzero(self._labels >= 0)
        log.info("compacting hnsw: %d live nodes, %d tombstones", alive.size, dead)
        vectors = self._index.reconstruct_batch(alive) if alive.size else np.zeros((0, self._dim), np.float32)
        index = self._new_hnsw()
        for start in range(0, alive.size, _ADD_CHUNK):
            index.add(np.ascontiguousarray(vectors[start : start + _ADD_CHUNK]))
        self._index = index
        self._labels = self._labels[alive]
        self._lookup = None
        self._dead = None
        self._mapped = None
        return int(dead)

    def _maybe_compact(self) -> None:
        ratio = self._params.compact_ratio
        if (
            self._kind == "hnsw"
            and ratio is not None
            and self._labels.size
            and self._dead_positions().size > ratio * self._labels.size
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
        if self._kind == "hnsw":
            out = self._index.reconstruct_batch(self._positions(ids))
        elif self._refine is not None:
            out = self._refine.reconstruct_batch(ids)
        else:
            out = self._index.reconstruct_batch(ids)
        return np.ascontiguousarray(out, dtype=np.float32)

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
        if filter is not None and not isinstance(filter, SearchFilter):
            raise IndexInputError(f"filter must be a SearchFilter, got {type(filter).__name__}")
        if q.shape[0] == 0 or len(self) == 0:
            return empty_results(q.shape[0], k)
        live = self._live_ids()
        allowed = None if filter is None else filter.allowed_ids
        excluded = np.zeros(0, np.int64) if filter is None or filter.excluded_ids is None else filter.excluded_ids
        match: np.ndarray | None = None  # the matching IDs, when an allow-list makes them few enough to list
        excl = np.zeros(0, np.int64)  # excluded IDs present in the index, when there is no allow-list
        if allowed is not None:
            match = allowed[members(live, allowed)]
            if excluded.size:
                match = match[~members(excluded, match)]
            n_match = int(match.size)
        else:
            excl = excluded[members(live, excluded)]
            n_match = int(live.size - excl.size)
        if n_match == 0:
            return empty_results(q.shape[0], k)
        if n_match <= self._params.exact_below and (allowed is not None or excluded.size):
            if match is None:
                match = np.setdiff1d(live, excl, assume_unique=True)
            return topk_exact(q, k, match, self._vectors_of(match))
        keep: list[Any] = []
        sel = self._selector(match, excl, keep)
        scores, ids = self._search_native(q, k, sel)
        short = (ids >= 0).sum(axis=1) < min(k, n_match)
        if short.any():
            s2, i2 = self._search_exhaustive(q[short], k, sel)
            scores[short], ids[short] = s2, i2
        return tidy(scores, ids)

    # Internals -------------------------------------------------------------------------------
    def _new_hnsw(self) -> Any:
        faiss = _faiss()
        index = faiss.IndexHNSWFlat(self._dim, self._params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self._params.ef_construction
        index.hnsw.efSearch = self._params.ef_search
        return index

    def _nprobe(self) -> int:
        nlist = int(self._index.nlist)
        return int(min(nlist, self._params.nprobe or default_nprobe(nlist)))

    def _check_device(self, device: str) -> str:
        if device not in DEVICES:
            raise VectorIndexError(f"Unknown device '{device}'. Available: {list(DEVICES)}")
        if device == "cuda":
            faiss = _faiss()
            if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0:
                raise VectorIndexError(
                    "device='cuda' but FAISS sees no GPU (faiss-cpu installed, or no CUDA device); "
                    "install faiss-gpu-cu12 (`pip install 'echo-rag[gpu]'`) on a CUDA machine or use device='cpu'"
                )
        return device

    def _gpu_index(self) -> Any:
        """The GPU copy used for unfiltered flat / IVF searches, or None (CPU only, HNSW, or no GPU)."""
        if self._device == "cpu" or self._kind == "hnsw" or self._index is None:
            return None
        faiss = _faiss()
        if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0:
            return None
        if self._gpu is None:  # pragma: no cover - needs faiss-gpu and a CUDA device
            if self._gpu_resources is None:
                self._gpu_resources = faiss.StandardGpuResources()
            self._gpu = faiss.index_cpu_to_gpu(self._gpu_resources, 0, self._index)
            if self._kind != "flat":
                self._gpu.nprobe = self._nprobe()
        return self._gpu

    def _live_ids(self) -> np.ndarray:
        if self._kind == "hnsw":
            return self._hnsw_lookup()[0]
        return self._ids

    def _hnsw_lookup(self) -> tuple[np.ndarray, np.ndarray]:
        if self._lookup is None:
            alive = np.flatnonzero(self._labels >= 0)
            order = np.argsort(self._labels[alive], kind="stable")
            self._lookup = (self._labels[alive][order], alive[order].astype(np.int64))
        return self._lookup

    def _positions(self, ids: np.ndarray) -> np.ndarray:
        """hnsw: graph positions of live ``ids`` (all must be live)."""
        sorted_ids, pos = self._hnsw_lookup()
        return np.asarray(pos[np.searchsorted(sorted_ids, ids)], dtype=np.int64)

    def _dead_positions(self) -> np.ndarray:
        if self._dead is None:
            self._dead = np.flatnonzero(self._labels < 0).astype(np.int64)
        return self._dead

    def _selector(self, match: np.ndarray | None, excl: np.ndarray, keep: list[Any]) -> Any:
        """The IDSelector of a search, in the index's own ID space (graph positions for hnsw).

        ``keep`` holds every object FAISS points to until the search returns.
        """
        faiss = _faiss()
        if self._kind == "hnsw":
            if match is not None:
                return self._in(np.sort(self._positions(match)), keep)
            dead = self._dead_positions()
            banned = np.union1d(dead, self._positions(excl)) if excl.size else dead
        else:
            if match is not None:
                return self._in(match, keep)
            banned = excl
        if banned.size == 0:
            return None
        sel = faiss.IDSelectorNot(self._in(banned, keep))
        keep.append(sel)
        return sel

    @staticmethod
    def _in(ids: np.ndarray, keep: list[Any]) -> Any:
        """An IDSelector accepting the sorted ``ids``: a bitmap for large dense sets, else a hash set."""
        faiss = _faiss()
        if ids.size >= _BITMAP_MIN and int(ids[-1]) < 64 * ids.size:
            bits = np.zeros(int(ids[-1]) + 1, dtype=bool)
            bits[ids] = True
            packed = np.packbits(bits, bitorder="little")
            keep.append(packed)
            sel = faiss.IDSelectorBitmap(packed)
        else:
            arr = np.ascontiguousarray(ids, dtype=np.int64)
            keep.append(arr)
            sel = faiss.IDSelectorBatch(arr)
        keep.append(sel)
        return sel

    def _search_native(self, q: np.ndarray, k: int, sel: Any) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()
        kind = self._kind
        if kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(self._params.ef_search, k))
            if sel is not None:
                params.sel = sel
            scores, pos = self._index.search(q, k, params=params)
            return scores, np.where(pos >= 0, self._labels[np.maximum(pos, 0)], -1)
        gpu = self._gpu_index() if sel is None else None
        if kind == "flat":
            if gpu is not None:  # pragma: no cover - needs a GPU
                return gpu.search(q, k)  # type: ignore[no-any-return]
            params = faiss.SearchParameters(sel=sel) if sel is not None else None
            return self._index.search(q, k, params=params)  # type: ignore[no-any-return]
        kk = max(k * self._params.refine_factor, _RERANK_MIN) if self._refine is not None else k
        kk = min(kk, max(len(self), k))
        params = faiss.SearchParametersIVF(nprobe=self._nprobe())
        if sel is not None:
            params.sel = sel
        if gpu is not None:  # pragma: no cover - needs a GPU
            scores, ids = gpu.search(q, kk)
        else:
            scores, ids = self._index.search(q, kk, params=params)
        if self._refine is None:
            return scores, ids
        return self._rerank(q, k, ids)

    def _rerank(self, q: np.ndarray, k: int, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact inner products of the PQ candidates ``cand`` (q, kk) from the float32 copies; top ``k``."""
        scores_out, ids_out = empty_results(q.shape[0], k)
        for start in range(0, q.shape[0], _RERANK_CHUNK):
            c = cand[start : start + _RERANK_CHUNK]
            uniq = np.unique(c[c >= 0])
            if uniq.size == 0:
                continue
            vecs = self._refine.reconstruct_batch(uniq)
            rows = np.searchsorted(uniq, np.maximum(c, 0))
            sims = np.einsum("qd,qcd->qc", q[start : start + _RERANK_CHUNK], vecs[rows])
            sims[c < 0] = -np.inf
            take = min(k, c.shape[1])
            order = np.argsort(-sims, axis=1, kind="stable")[:, :take]
            scores_out[start : start + c.shape[0], :take] = np.take_along_axis(sims, order, axis=1)
            ids_out[start : start + c.shape[0], :take] = np.take_along_axis(c, order, axis=1)
        return tidy(scores_out, ids_out)

    def _search_exhaustive(self, q: np.ndarray, k: int, sel: Any) -> tuple[np.ndarray, np.ndarray]:
        """Exact (or, for ivf_pq without copies, every-list) search over the items ``sel`` accepts."""
        faiss = _faiss()
        if self._kind == "hnsw":
            storage = faiss.downcast_index(self._index.storage)
            params = faiss.SearchParameters(sel=sel) if sel is not None else None
            scores, pos = storage.search(q, k, params=params)
            return scores, np.where(pos >= 0, self._labels[np.maximum(pos, 0)], -1)
        if self._kind == "flat" or self._refine is not None:
            target = self._index if self._kind == "flat" else self._refine
            params = faiss.SearchParameters(sel=sel) if sel is not None else None
            return target.search(q, k, params=params)  # type: ignore[no-any-return]
        params = faiss.SearchParametersIVF(nprobe=int(self._index.nlist))
        if sel is not None:
            params.sel = sel
        return self._index.search(q, k, params=params)  # type: ignore[no-any-return]

    def _writable(self) -> None:
        """Before a change: replace a memory-mapped (read-only) index by a private in-memory copy."""
        if self._mapped is None:
            return
        folder, mtime = self._mapped
        index_file = folder / INDEX_FILE
        if not index_file.is_file() or index_file.stat().st_mtime != mtime:
            raise VectorIndexError(
                f"{index_file} changed since this index was memory-mapped from it; load the index again to change it"
            )
        log.info("reading %s into memory to change it (it was memory-mapped, read-only)", folder)
        faiss = _faiss()
        self._index = faiss.read_index(str(index_file))
        if (folder / REFINE_FILE).is_file() and self._refine is not None:
            self._refine = faiss.read_index(str(folder / REFINE_FILE))
        self._mapped = None

    # Persistence -----------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write ``index.faiss`` (+ ``refine.faiss``) and the ID table (``ids.npy`` or ``labels.npy``) to ``folder``.

        Each file is written under a temporary name and renamed, so a reader never sees a partial file
        and an index memory-mapped from the same folder keeps working.
        """
        if self._index is None:
            raise VectorIndexError(f"This {self._kind} index is empty and untrained; add vectors before saving")
        faiss = _faiss()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = {INDEX_FILE}
        _write_faiss(faiss, self._index, folder / INDEX_FILE)
        if self._refine is not None:
            _write_faiss(faiss, self._refine, folder / REFINE_FILE)
            written.add(REFINE_FILE)
        table, name = (self._labels, LABELS_FILE) if self._kind == "hnsw" else (self._ids, IDS_FILE)
        _write_npy(table, folder / name)
        written.add(name)
        for stale in set(_SIDE_FILES) - written:
            (folder / stale).unlink(missing_ok=True)
        if self._mapped is not None and self._mapped[0].resolve() == folder.resolve():
            self._mapped = (self._mapped[0], (folder / INDEX_FILE).stat().st_mtime)

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
        faiss = _faiss()
        folder = Path(folder)
        params = dict(params or {})
        for resolved in ("nlist", "pq_m", "pq_nbits"):  # fixed by the trained index itself
            params.pop(resolved, None)
        self = cls(dim, kind, device=device, **params)
        flags = (faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY) if mmap else 0
        index_file = folder / INDEX_FILE
        self._index = _read_faiss(faiss, index_file, flags)
        expected = {
            "flat": faiss.IndexIDMap2,
            "hnsw": faiss.IndexHNSWFlat,
            "ivf_flat": faiss.IndexIVFFlat,
            "ivf_pq": faiss.IndexIVFPQ,
        }[kind]
        if not isinstance(self._index, expected):
            raise VectorIndexError(
                f"{index_file} holds a {type(self._index).__name__}, not the {kind} index its manifest names; "
                "rebuild it with `rag index build`"
            )
        if int(self._index.d) != dim:
            raise VectorIndexError(
                f"{index_file} holds {self._index.d}-d vectors but its manifest says dim={dim}; "
                "rebuild it with `rag index build`"
            )
        if kind == "hnsw":
            self._labels = _read_npy(folder / LABELS_FILE)
            table_size = self._labels.size
        else:
            self._ids = _read_npy(folder / IDS_FILE)
            table_size = self._ids.size
            if (folder / REFINE_FILE).is_file():
                self._refine = _read_faiss(faiss, folder / REFINE_FILE, flags)
        if int(self._index.ntotal) != table_size:
            raise VectorIndexError(
                f"{folder}: the FAISS index holds {self._index.ntotal} vectors but its ID table {table_size}; "
                "the files do not belong together, rebuild with `rag index build`"
            )
        if mmap:
            self._mapped = (folder, index_file.stat().st_mtime)
        return self


def _write_faiss(faiss: Any, index: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        faiss.write_index(index, str(tmp))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_npy(arr: np.ndarray, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as f:
            np.save(f, np.ascontiguousarray(arr, dtype=np.int64), allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read_faiss(faiss: Any, path: Path, flags: int) -> Any:
    if not path.is_file():
        raise VectorIndexError(f"Index file {path} is missing; rebuild the index with `rag index build`")
    try:
        return faiss.read_index(str(path), flags)
    except RuntimeError as e:
        raise VectorIndexError(
            f"Index file {path} cannot be read by FAISS ({e}); rebuild it with `rag index build`"
        ) from e


def _read_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise VectorIndexError(f"ID table {path} is missing; rebuild the index with `rag index build`")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise VectorIndexError(f"ID table {path} cannot be read ({e}); rebuild the index with `rag index build`") from e
    if arr.ndim != 1 or arr.dtype != np.int64:
        raise VectorIndexError(f"ID table {path} must be a 1-D int64 array, got {arr.dtype} {arr.shape}")
    return np.array(arr)


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
        for start in range(0, ids64.size, _ADD_CHUNK):
            index._add_unchecked(ids64[start : start + _ADD_CHUNK], x[start : start + _ADD_CHUNK])
            bar.update(min(_ADD_CHUNK, ids64.size - start))
    return index
