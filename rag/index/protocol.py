"""The vector index interface: what the retrieval stage needs from FAISS, Milvus or a test fake.

Every index holds ``(id, vector)`` pairs: ``id`` is a stable int64 store row ID (never negative: ``-1``
pads results), ``vector`` a float32 row of ``dim`` values, L2-normalised by the index on the way in.
Scores are inner products of L2-normalised vectors, i.e. cosine similarities, highest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from rag.core.errors import IndexInputError


def _id_set(value: object, name: str) -> np.ndarray | None:
    if value is None:
        return None
    arr = np.asarray(value)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise IndexInputError(
            f"SearchFilter.{name} must be a 1-D array of integer IDs, got dtype {arr.dtype} and shape {arr.shape}; "
            "pass e.g. np.asarray(ids, dtype=np.int64)"
        )
    return np.unique(arr.astype(np.int64, copy=False))


@dataclass(frozen=True)
class SearchFilter:
    """Which IDs a search may return, applied inside the search (a pre-filter), not to its results.

    Attributes:
        allowed_ids: (m,) int64; when given, only these IDs may be returned. An empty array allows nothing.
        excluded_ids: (e,) int64; these IDs are never returned (applied after ``allowed_ids``).

    Both are stored sorted and de-duplicated.
    """

    allowed_ids: np.ndarray | None = None
    excluded_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_ids", _id_set(self.allowed_ids, "allowed_ids"))
        object.__setattr__(self, "excluded_ids", _id_set(self.excluded_ids, "excluded_ids"))

    @property
    def is_noop(self) -> bool:
        """True when the filter lets every ID through."""
        return self.allowed_ids is None and (self.excluded_ids is None or self.excluded_ids.size == 0)


@runtime_checkable
class VectorIndex(Protocol):
    """A mutable k-nearest-neighbour index over L2-normalised vectors with stable int64 IDs."""

    @property
    def dim(self) -> int:
        """Dimension of the vectors."""
        ...

    @property
    def kind(self) -> str:
        """Index structure: ``flat``, ``hnsw``, ``ivf_flat`` or ``ivf_pq``."""
        ...

    def __len__(self) -> int:
        """Number of live (searchable) vectors."""
        ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add new items.

        Args:
            ids: (n,) int64, non-negative, unique and not yet in the index.
            vectors: (n, dim) float32, finite; L2-normalised here when not already.
        """
        ...

    def remove(self, ids: np.ndarray) -> int:
        """Remove items; IDs not in the index are ignored. Returns how many were removed."""
        ...

    def update(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Replace the vectors of IDs already in the index (same rules as :meth:`add`)."""
        ...

    def search(
        self, queries: np.ndarray, k: int, *, filter: SearchFilter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best items per query.

        Args:
            queries: (q, dim) float32, L2-normalised here when not already.
            k: results per query, >= 1.
            filter: restricts which IDs may be returned; ``k`` results come back whenever ``k`` items pass it.

        Returns:
            scores (q, k) float32 inner products, best first; ids (q, k) int64. Rows are padded with
            ``-inf`` / ``-1`` only when fewer than ``k`` items pass the filter.
        """
        ...

    def save(self, folder: Path) -> None:
        """Write what this index needs to be loaded again into ``folder`` (the manifest is written by the caller)."""
        ...
