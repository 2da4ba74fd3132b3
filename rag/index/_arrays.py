"""Input checks and result shaping shared by the index back-ends."""

from __future__ import annotations

import numpy as np

from rag.core.errors import IndexInputError

NORM_TOLERANCE = 1e-4
"""Rows whose L2 norm differs from 1 by more than this are normalised on the way in."""


def _preview(values: np.ndarray, n: int = 5) -> str:
    shown = ", ".join(str(int(v)) for v in values[:n])
    return f"[{shown}{', ...' if values.size > n else ''}] ({values.size} in all)"


def check_ids(ids: object, *, name: str = "ids") -> np.ndarray:
    """Returns: (n,) int64 IDs, checked to be 1-D, integer, non-negative and unique."""
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise IndexInputError(f"{name} must be a 1-D array of int64 IDs, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise IndexInputError(
            f"{name} must hold integers (store row IDs), got dtype {arr.dtype}; pass np.asarray(ids, dtype=np.int64)"
        )
    out = arr.astype(np.int64, copy=False)
    if out.size and out.min() < 0:
        raise IndexInputError(
            f"{name} must be non-negative (-1 marks padding in results), got {_preview(out[out < 0])}"
        )
    uniq, counts = np.unique(out, return_counts=True)
    if uniq.size != out.size:
        raise IndexInputError(f"{name} holds duplicates: {_preview(uniq[counts > 1])}; each ID may appear once")
    return out


def check_vectors(vectors: object, dim: int, *, name: str = "vectors", rows: int | None = None) -> np.ndarray:
    """Returns: (n, dim) float32, C-contiguous, finite and L2-normalised (a copy when normalising was needed)."""
    arr = np.asarray(vectors)
    if arr.ndim != 2 or arr.shape[1] != dim:
        hint = "; for a single vector pass v[None, :]" if arr.ndim == 1 else ""
        raise IndexInputError(f"{name} must have shape (n, {dim}) for this index, got {arr.shape}{hint}")
    if rows is not None and arr.shape[0] != rows:
        raise IndexInputError(f"{name} has {arr.shape[0]} rows but {rows} IDs were given; pass one ID per row")
    if not np.issubdtype(arr.dtype, np.floating):
        raise IndexInputError(f"{name} must be floating point (float32), got dtype {arr.dtype}")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    finite = np.isfinite(out).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise IndexInputError(
            f"{name} has non-finite values (NaN or inf) in rows {_preview(bad)}; fix the encoder output"
        )
    if out.shape[0] == 0:
        return out
    norms = np.linalg.norm(out, axis=1)
    if (norms == 0).any():
        raise IndexInputError(
            f"{name} has all-zero rows {_preview(np.flatnonzero(norms == 0))}; they cannot be L2-normalised"
        )
    if np.abs(norms - 1.0).max() > NORM_TOLERANCE:
        out = out / norms[:, None]
    return out


def check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or int(k) < 1:
        raise IndexInputError(f"k must be an integer >= 1, got {k!r}")
    return int(k)


def empty_results(q: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns: scores (q, k) float32 all ``-inf``; ids (q, k) int64 all ``-1``."""
    return np.full((q, k), -np.inf, dtype=np.float32), np.full((q, k), -1, dtype=np.int64)


def tidy(scores: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pad with ``-inf`` where the ID is ``-1`` and return float32 / int64 arrays."""
    s = np.ascontiguousarray(scores, dtype=np.float32)
    i = np.ascontiguousarray(ids, dtype=np.int64)
    s[i < 0] = -np.inf
    return s, i


def topk_exact(queries: np.ndarray, k: int, ids: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` by inner product over a small explicit set.

    Args:
        queries: (q, dim) float32. ids: (m,) int64. vectors: (m, dim) float32, rows matching ``ids``.

    Returns:
        scores (q, k) float32 best first, ids (q, k) int64, padded when m < k.
    """
    q = queries.shape[0]
    scores_out, ids_out = empty_results(q, k)
    m = ids.size
    if m == 0:
        return scores_out, ids_out
    sims = queries @ vectors.T  # (q, m)
    take = min(k, m)
    if take < m:
        part = np.argpartition(-sims, take - 1, axis=1)[:, :take]
    else:
        part = np.broadcast_to(np.arange(m), (q, m)).copy()
    part_scores = np.take_along_axis(sims, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    best = np.take_along_axis(part, order, axis=1)
    scores_out[:, :take] = np.take_along_axis(part_scores, order, axis=1)
    ids_out[:, :take] = ids[best]
    return scores_out, ids_out


def members(sorted_ids: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Boolean mask over ``candidates``: which of them are in ``sorted_ids`` (sorted, unique int64)."""
    if sorted_ids.size == 0 or candidates.size == 0:
        return np.zeros(candidates.shape, dtype=bool)
    pos = np.searchsorted(sorted_ids, candidates)
    pos = np.minimum(pos, sorted_ids.size - 1)
    return np.asarray(sorted_ids[pos] == candidates)
