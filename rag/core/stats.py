"""Statistics shared by training and evaluation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["auroc", "auroc_interval", "roc_curve"]


def auroc(scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """Area under the ROC curve from ranks (Mann-Whitney U / (P x N)); ties get the average rank.

    Returns NaN when the labels hold one class only.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(len(s), dtype=np.float64)
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    u = ranks[y].sum() - pos * (pos + 1) / 2.0
    return float(u / (pos * neg))


def auroc_interval(
    scores: Sequence[float] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    *,
    draws: int = 1000,
    seed: int = 0,
    groups: Sequence[int] | np.ndarray | None = None,
) -> tuple[float, float]:
    """95 % bootstrap interval of :func:`auroc`.

    Resamples items with replacement, or whole ``groups`` (e.g. patients, whose studies are not
    independent) when given; resamples holding one class only are skipped.

    Returns:
        (low, high); NaN, NaN when the labels hold one class only.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    if y.all() or not y.any():
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    if groups is None:
        units = [np.array([i]) for i in range(len(s))]
    else:
        g = np.asarray(groups)
        units = [np.flatnonzero(g == key) for key in np.unique(g)]
    values = []
    for _ in range(draws):
        rows = np.concatenate([units[i] for i in rng.integers(0, len(units), len(units))])
        yy = y[rows]
        if yy.all() or not yy.any():
            continue
        values.append(auroc(s[rows], yy))
    if not values:
        return float("nan"), float("nan")
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def roc_curve(
    scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The ROC curve: (false-positive rates, true-positive rates), from (0, 0) to (1, 1), one point per threshold.

    Returns: two (m,) float64 arrays; empty when the labels hold one class only.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return np.zeros(0), np.zeros(0)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last item of each distinct score
    tps = np.cumsum(y)[last]
    fps = (last + 1) - tps
    return np.r_[0.0, fps / neg], np.r_[0.0, tps / pos]
