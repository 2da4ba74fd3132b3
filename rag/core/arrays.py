"""Looking keys up in an ascending array: the one way the catalog, the library and retrieval do it."""

from __future__ import annotations

import numpy as np

__all__ = ["find", "lookup"]


def lookup(sorted_keys: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of ``keys`` stands in ``sorted_keys`` (ascending).

    Returns:
        (rows (n,) int64, found (n,) bool): ``sorted_keys[rows[i]] == keys[i]`` where ``found[i]``;
        ``rows`` is clipped into range elsewhere, so it can index without checks.
    """
    keys = np.asarray(keys)
    if not len(sorted_keys):
        return np.zeros(len(keys), np.int64), np.zeros(len(keys), bool)
    rows = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1).astype(np.int64)
    return rows, np.asarray(sorted_keys[rows] == keys)


def find(sorted_keys: np.ndarray, key: int) -> int | None:
    """The row of ``key`` in ascending ``sorted_keys``, or None."""
    row = int(np.searchsorted(sorted_keys, key))
    return row if row < len(sorted_keys) and int(sorted_keys[row]) == key else None
