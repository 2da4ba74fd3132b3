"""Small clustered data sets for the index tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Data:
    """``ids`` (n,) int64 unique, ``vectors`` (n, dim) float32 L2-normalised, ``queries`` (q, dim) likewise."""

    ids: np.ndarray
    vectors: np.ndarray
    queries: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def exact(self, k: int, keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Brute-force top-k (scores, ids) over the rows where ``keep`` (bool mask) is true."""
        sims = self.queries @ self.vectors.T
        if keep is not None:
            sims = np.where(keep[None, :], sims, -np.inf)
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(sims, order, axis=1), self.ids[order]


def clustered(n: int, dim: int, *, clusters: int, q: int, seed: int) -> Data:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + 0.35 * rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    queries = x[rng.choice(n, q, replace=False)] + 0.2 * rng.standard_normal((q, dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    ids = np.sort(rng.choice(10**9, n, replace=False)).astype(np.int64)
    return Data(ids=ids, vectors=x.astype(np.float32), queries=queries.astype(np.float32))


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row of ``truth`` present in the same row of ``found``."""
    return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / len(t) for f, t in zip(found, truth, strict=True)]))
