"""The vector index interface: what the retrieval stage needs from FAISS, Milvus or a test fake.

Every index holds ``(id, vector)`` pairs: ``id`` is a stable int64 store row ID (never negative: ``-1``
pads results), ``vector`` a float32 row of ``dim`` values, L2-normalised by the index on the way in.
Scores are inner products of L2-normalised vectors, i.e. cosine similarities, highest first.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from rag.core.errors import IndexInputError
from rag.index.attributes import ALLOWED, check_attributes, check_names


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


def _names(value: object, attribute: str, field: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, str | Iterable):
        raise IndexInputError(
            f"SearchFilter.{field} must be a collection of names, e.g. {{'{ALLOWED[attribute][0]}'}}, "
            f"got {type(value).__name__}"
        )
    return check_names(value, attribute, where=f"SearchFilter.{field}")


@dataclass(frozen=True)
class SearchFilter:
    """Which items a search may return, applied inside the search (a pre-filter), not to its results.

    Attributes:
        allowed_ids: (m,) int64; when given, only these IDs may be returned. An empty array allows nothing.
        excluded_ids: (e,) int64; these IDs are never returned (applied after ``allowed_ids``).
        views: when given, only rows whose ``view`` attribute is one of these ``COARSE_VIEWS`` names.
        modalities: when given, only rows whose ``modality`` attribute is one of these (see
            :data:`rag.index.attributes.MODALITIES`).

    IDs are stored sorted and de-duplicated, names as a sorted tuple; an empty ``views`` or ``modalities``
    allows nothing. The attribute conditions need an index that stores attributes (Milvus); for one
    that does not (FAISS), turn them into allowed IDs first with :meth:`resolved`.
    """

    allowed_ids: np.ndarray | None = None
    excluded_ids: np.ndarray | None = None
    views: Collection[str] | None = None
    modalities: Collection[str] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_ids", _id_set(self.allowed_ids, "allowed_ids"))
        object.__setattr__(self, "excluded_ids", _id_set(self.excluded_ids, "excluded_ids"))
        object.__setattr__(self, "views", _names(self.views, "view", "views"))
        object.__setattr__(self, "modalities", _names(self.modalities, "modality", "modalities"))

    @property
    def is_noop(self) -> bool:
        """True when the filter lets every ID through."""
        return (
            self.allowed_ids is None
            and (self.excluded_ids is None or self.excluded_ids.size == 0)
            and not self.has_attributes
        )

    @property
    def has_attributes(self) -> bool:
        """True when the filter names views or modalities."""
        return self.views is not None or self.modalities is not None

    def resolved(self, ids: np.ndarray, attributes: Mapping[str, object]) -> SearchFilter:
        """This filter with its views and modalities turned into allowed IDs, for an index without attributes.

        Args:
            ids: (n,) int64, the IDs whose attributes are known (e.g. every ID of the index).
            attributes: ``{"view": (n,) str, "modality": (n,) str}`` aligned with ``ids``, e.g. from
                :func:`rag.index.attributes.attributes_for`; only the attributes the filter names are needed.

        Returns: a filter with ``allowed_ids`` (those of ``ids`` that match, within this filter's own
        ``allowed_ids``) and the same ``excluded_ids``; ``self`` when it names no attributes.

        Raises:
            IndexInputError: ``attributes`` lacks one the filter names, or does not hold one name per ID.
        """
        if not self.has_attributes:
            return self
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        needed = {key: wanted for key, wanted in (("view", self.views), ("modality", self.modalities)) if wanted}
        if not isinstance(attributes, Mapping):
            kind = type(attributes).__name__
            raise IndexInputError(f"attributes must be a mapping like {{'view': [...]}}, got {kind}")
        missing = sorted(set(needed) - set(attributes))
        if missing:
            raise IndexInputError(
                f"the filter names {missing} but the attributes given hold {sorted(attributes)}; "
                "pass them from rag.index.attributes.attributes_for(source, ids, catalog=...)"
            )
        values = check_attributes({key: attributes[key] for key in needed}, ids.size)
        keep = np.ones(ids.size, dtype=bool)
        for key, wanted in (("view", self.views), ("modality", self.modalities)):
            if wanted is not None:
                keep &= np.isin(np.asarray(values[key], dtype=object), list(wanted)) if wanted else False
        allowed = np.unique(ids[keep])
        if self.allowed_ids is not None:
            allowed = np.intersect1d(allowed, self.allowed_ids)
        return SearchFilter(allowed_ids=allowed, excluded_ids=self.excluded_ids)


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
                An index that stores no attributes refuses one naming views or modalities
                (see :meth:`SearchFilter.resolved`).

        Returns:
            scores (q, k) float32 inner products, best first; ids (q, k) int64. Rows are padded with
            ``-inf`` / ``-1`` only when fewer than ``k`` items pass the filter.
        """
        ...

    def save(self, folder: Path) -> None:
        """Write what this index needs to be loaded again into ``folder`` (the manifest is written by the caller)."""
        ...
