"""Which ID each node of an HNSW graph holds, and its tombstones.

HNSW graphs cannot drop nodes, so :class:`HnswNodes` maps graph positions to IDs itself: a removed or replaced
item's node becomes a tombstone (its label -1) that every search excludes, until the graph is rebuilt from the
live vectors (:meth:`rag.index.faiss_index.FaissIndex.compact`).
"""

from __future__ import annotations

import numpy as np


class HnswNodes:
    """The labels of an HNSW graph's nodes (position -> ID, -1 = tombstone), with the lookups derived from them
    cached until the next change."""

    def __init__(self, labels: np.ndarray | None = None) -> None:
        self.labels = np.zeros(0, dtype=np.int64) if labels is None else labels
        self._lookup: tuple[np.ndarray, np.ndarray] | None = None  # (sorted live IDs, their positions)
        self._dead: np.ndarray | None = None  # tombstone positions

    def __len__(self) -> int:
        """Nodes in the graph, tombstones included."""
        return int(self.labels.size)

    def live_ids(self) -> np.ndarray:
        """The IDs of the live nodes, sorted."""
        return self._by_id()[0]

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """Graph positions of live ``ids`` (all must be live)."""
        sorted_ids, pos = self._by_id()
        return np.asarray(pos[np.searchsorted(sorted_ids, ids)], dtype=np.int64)

    def alive(self) -> np.ndarray:
        """Positions of the live nodes, in graph order."""
        return np.flatnonzero(self.labels >= 0)

    def dead(self) -> np.ndarray:
        """Positions of the tombstones."""
        if self._dead is None:
            self._dead = np.flatnonzero(self.labels < 0).astype(np.int64)
        return self._dead

    def append(self, ids: np.ndarray) -> None:
        """Label the nodes just added to the graph, in the order they were added."""
        self.labels = np.concatenate([self.labels, ids])
        self._lookup = None

    def bury(self, ids: np.ndarray) -> None:
        """Turn the nodes of the live ``ids`` into tombstones."""
        self.labels[self.positions(ids)] = -1
        self._lookup = None
        self._dead = None

    def _by_id(self) -> tuple[np.ndarray, np.ndarray]:
        if self._lookup is None:
            alive = self.alive()
            order = np.argsort(self.labels[alive], kind="stable")
            self._lookup = (self.labels[alive][order], alive[order].astype(np.int64))
        return self._lookup
