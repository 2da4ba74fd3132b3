"""FAISS index parameters, the automatic choice of kind, and the deferred FAISS import.

:class:`FaissParams` validates a :class:`rag.index.faiss_index.FaissIndex`'s build and search parameters;
``default_*`` resolve the ones left unset once the data size is known; :func:`choose_kind` picks the kind
for ``kind="auto"``. FAISS itself is imported by :func:`import_faiss`, never when this module is imported.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rag.core.errors import IndexInputError, VectorIndexError
from rag.core.validation import format_validation_error

KINDS = ("flat", "hnsw", "ivf_flat", "ivf_pq")
DEVICES = ("cpu", "auto", "cuda")

FLAT_BELOW = 20_000
"""``choose_kind``: below this many vectors, exact search (a few ms per query, nothing to train or tune)."""
IVF_PQ_FROM = 10_000_000
"""``choose_kind``: from this many vectors, IVF-PQ (64 bytes of codes per 512-d vector in memory, exact copies
memory-mapped for re-ranking); below it, IVF-Flat (20 GB of float32 at 10M x 512)."""


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
RELEVANT = {
    "flat": _COMMON,
    "hnsw": ("hnsw_m", "ef_construction", "ef_search", "compact_ratio", *_COMMON),
    "ivf_flat": ("nlist", "nprobe", "train_size", *_COMMON),
    "ivf_pq": ("nlist", "nprobe", "pq_m", "pq_nbits", "refine_factor", "train_size", *_COMMON),
}
"""The :class:`FaissParams` fields each kind uses (what :attr:`FaissIndex.params` reports)."""


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


def import_faiss() -> Any:
    """The ``faiss`` module, imported on first use."""
    try:
        import faiss
    except ImportError as e:  # pragma: no cover - faiss-cpu is a core dependency
        raise VectorIndexError(
            "FAISS is not installed; install faiss-cpu (`pip install faiss-cpu`) or, with CUDA 12, "
            "`pip install 'echo-rag[gpu]'`"
        ) from e
    return faiss


def check_params(kind: str, params: dict[str, Any]) -> FaissParams:
    """Validate ``kind`` and ``params``; raises :class:`VectorIndexError` naming the allowed parameters."""
    if kind not in KINDS:
        raise VectorIndexError(f"Unknown index kind '{kind}'. Available: {list(KINDS)} (or 'auto' in build_index)")
    try:
        return FaissParams(**params)
    except ValidationError as e:
        allowed = sorted(FaissParams.model_fields)
        problems = format_validation_error(e)
        raise VectorIndexError(f"Invalid FAISS index parameters ({problems}). Allowed parameters: {allowed}") from e


def check_device(device: str) -> str:
    """Validate ``device``; ``cuda`` also needs a GPU that FAISS sees."""
    if device not in DEVICES:
        raise VectorIndexError(f"Unknown device '{device}'. Available: {list(DEVICES)}")
    if device == "cuda" and not sees_gpu():
        raise VectorIndexError(
            "device='cuda' but FAISS sees no GPU (faiss-cpu installed, or no CUDA device); "
            "install faiss-gpu (`pip install 'echo-rag[gpu]'`) on a CUDA machine or use device='cpu'"
        )
    return device


def sees_gpu() -> bool:
    """Whether FAISS was built with GPU support (``faiss-gpu``) and sees a CUDA device."""
    faiss = import_faiss()
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
