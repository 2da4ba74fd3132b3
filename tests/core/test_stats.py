"""AUROC, its bootstrap interval and the ROC curve."""

from __future__ import annotations

import math

import numpy as np

from rag.core.stats import auroc, auroc_interval, roc_curve


def test_auroc_of_perfect_inverted_and_tied_scores() -> None:
    assert auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert auroc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    assert auroc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == 0.5
    assert math.isnan(auroc([0.1, 0.2], [1, 1]))


def test_interval_brackets_the_auroc_and_narrows_with_more_data() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    s = y + rng.normal(0, 1.0, 400)
    value = auroc(s, y)
    low, high = auroc_interval(s, y, draws=400)
    assert low < value < high
    small_low, small_high = auroc_interval(s[:40], y[:40], draws=400)
    assert (high - low) < (small_high - small_low)
    grouped = auroc_interval(s, y, draws=200, groups=np.arange(400) // 4)
    assert grouped[0] < value < grouped[1]
    assert all(math.isnan(v) for v in auroc_interval([0.1, 0.2], [0, 0]))


def test_roc_curve_area_equals_the_auroc() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    s = np.round(y + rng.normal(0, 1.2, 300), 1)  # with ties
    fpr, tpr = roc_curve(s, y)
    assert fpr[0] == tpr[0] == 0.0 and fpr[-1] == tpr[-1] == 1.0
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert math.isclose(area, auroc(s, y), abs_tol=1e-9)
    assert len(roc_curve([0.3], [1])[0]) == 0
