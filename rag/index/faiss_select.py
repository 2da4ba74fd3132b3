"""Filters inside a FAISS search: which live items a :class:`SearchFilter` lets through, and the ``IDSelector``
that makes the index collect only those.

:func:`match_filter` resolves a filter against the index's live IDs; :func:`search_selector` turns the result,
in the index's own ID space (graph positions for HNSW, tombstones excluded), into an ``IDSelectorBatch`` or
``IDSelectorBitmap``, wrapped in an ``IDSelectorNot`` for exclusions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rag.core.errors import IndexInputError
from rag.index._arrays import members
from rag.index.faiss_nodes import HnswNodes
from rag.index.faiss_params import import_faiss
from rag.index.protocol import SearchFilter

BITMAP_MIN = 50_000
"""Selectors over at least this many IDs use a bitmap when the IDs are dense enough (below 64 bits per ID)."""


@dataclass(frozen=True)
class FilterMatch:
    """The live items a search filter lets through."""

    match: np.ndarray | None
    """The matching IDs, when an allow-list makes them few enough to list (else None)."""
    excl: np.ndarray
    """Excluded IDs present in the index, when there is no allow-list."""
    count: int
    """How many live items pass."""
    narrows: bool
    """Whether the filter names any IDs at all (an allow-list, or a non-empty exclude-list)."""

    def ids(self, live: np.ndarray) -> np.ndarray:
        """The sorted matching IDs among ``live`` (the index's sorted live IDs)."""
        if self.match is not None:
            return self.match
        return np.setdiff1d(live, self.excl, assume_unique=True)


def check_filter(filter: object) -> SearchFilter | None:
    """``filter`` itself when a FAISS index can apply it.

    Raises:
        IndexInputError: not a :class:`SearchFilter`, or one naming views or modalities, which a FAISS
            index does not store.
    """
    if filter is None:
        return None
    if not isinstance(filter, SearchFilter):
        raise IndexInputError(f"filter must be a SearchFilter, got {type(filter).__name__}")
    if filter.has_attributes:
        raise IndexInputError(
            f"A FAISS index stores no view or modality, so it cannot apply views={filter.views} / "
            f"modalities={filter.modalities}; turn them into allowed IDs first: "
            "filter.resolved(ids, rag.index.attributes.attributes_for(source, ids, catalog=catalog)), "
            "or search a Milvus index built with attributes"
        )
    return filter


def match_filter(live: np.ndarray, filter: SearchFilter | None) -> FilterMatch:
    """Resolve ``filter`` (checked by :func:`check_filter`) against the sorted ``live`` IDs."""
    allowed = None if filter is None else filter.allowed_ids
    excluded = np.zeros(0, np.int64) if filter is None or filter.excluded_ids is None else filter.excluded_ids
    match: np.ndarray | None = None
    excl = np.zeros(0, np.int64)
    if allowed is not None:
        match = allowed[members(live, allowed)]
        if excluded.size:
            match = match[~members(excluded, match)]
        count = int(match.size)
    else:
        excl = excluded[members(live, excluded)]
        count = int(live.size - excl.size)
    return FilterMatch(match, excl, count, narrows=allowed is not None or bool(excluded.size))


def search_selector(found: FilterMatch, keep: list[Any], *, nodes: HnswNodes | None) -> Any:
    """The IDSelector of a search for the items ``found``, in the index's own ID space: IDs, or graph positions
    when ``nodes`` (hnsw, where tombstones are always excluded) is given. None when it would accept everything.

    ``keep`` holds every object FAISS points to until the search returns.
    """
    match, excl = found.match, found.excl
    if nodes is None:
        return _id_selector(match, excl, keep)
    if match is not None:
        return _id_selector(np.sort(nodes.positions(match)), excl, keep)
    dead = nodes.dead()
    return _id_selector(None, np.union1d(dead, nodes.positions(excl)) if excl.size else dead, keep)


def _id_selector(allowed: np.ndarray | None, banned: np.ndarray, keep: list[Any]) -> Any:
    """The IDSelector accepting the sorted ``allowed`` IDs or, when that is None, every ID but the sorted
    ``banned``; None when it would accept everything.

    ``keep`` holds every object FAISS points to until the search returns.
    """
    if allowed is not None:
        return _selector_in(allowed, keep)
    if banned.size == 0:
        return None
    sel = import_faiss().IDSelectorNot(_selector_in(banned, keep))
    keep.append(sel)
    return sel


def _selector_in(ids: np.ndarray, keep: list[Any]) -> Any:
    """An IDSelector accepting the sorted ``ids``: a bitmap for large dense sets, else a hash set."""
    faiss = import_faiss()
    if ids.size >= BITMAP_MIN and int(ids[-1]) < 64 * ids.size:
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
