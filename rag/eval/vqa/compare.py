"""Does retrieval help? The paired difference between two runs over the same items.

Per item the two arms are right or wrong; the difference in accuracy (second minus first) gets a
95 % interval from a paired bootstrap that resamples images (questions on one image move together),
and McNemar's exact test on the discordant pairs says whether the arms differ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rag.eval.vqa.runner import RunResult

__all__ = ["PairedDifference", "comparison_table", "mcnemar_p", "paired_difference"]


def mcnemar_p(only_first: int, only_second: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test of the discordant pairs at 1/2."""
    n = only_first + only_second
    if n == 0:
        return 1.0
    low = min(only_first, only_second)
    tail = sum(math.comb(n, i) for i in range(low + 1)) / 2**n
    return float(min(1.0, 2 * tail))


@dataclass(frozen=True)
class PairedDifference:
    """Accuracy of the second arm minus the first, over the items both answered."""

    label: str
    n: int
    first: float
    second: float
    difference: float
    low: float
    high: float
    only_first: int
    only_second: int
    p_value: float

    def row(self) -> str:
        return (
            f"| {self.label} | {self.n} | {self.first:.3f} | {self.second:.3f} | {self.difference:+.3f} "
            f"[{self.low:+.3f}, {self.high:+.3f}] | {self.only_first} / {self.only_second} | {self.p_value:.3g} |"
        )


HEADER = (
    "| items | n | first | second | second - first [95 % CI] | right only in first / second | McNemar p |\n"
    "|---|---:|---:|---:|---:|---:|---:|"
)


def paired_difference(
    first: RunResult,
    second: RunResult,
    *,
    part: str | None = None,
    category: tuple[str, str] | None = None,
    draws: int = 2000,
    seed: int = 0,
) -> PairedDifference:
    """The paired difference over the items of ``part`` / ``category`` that both runs scored."""
    a = {it.id: it for it in first.items}
    pairs = []
    for it in second.items:
        other = a.get(it.id)
        if other is None or (part is not None and it.part != part):
            continue
        if category is not None and it.categories.get(category[0]) != category[1]:
            continue
        pairs.append((it.image, int(other.correct), int(it.correct)))
    label = part or (f"{category[0]}={category[1]}" if category else "all")
    if not pairs:
        nan = float("nan")
        return PairedDifference(label, 0, nan, nan, nan, nan, nan, 0, 0, 1.0)
    x = np.array([p[1] for p in pairs], dtype=np.float64)
    y = np.array([p[2] for p in pairs], dtype=np.float64)
    images = sorted({p[0] for p in pairs})
    index = {im: i for i, im in enumerate(images)}
    group = np.array([index[p[0]] for p in pairs])
    sums = np.zeros((len(images), 3))
    np.add.at(sums, group, np.stack([x, y, np.ones_like(x)], axis=1))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(images), size=(draws, len(images)))
    boot = sums[picks].sum(axis=1)
    diffs = (boot[:, 1] - boot[:, 0]) / boot[:, 2]
    low, high = np.percentile(diffs, [2.5, 97.5])
    only_first = int(((x == 1) & (y == 0)).sum())
    only_second = int(((x == 0) & (y == 1)).sum())
    return PairedDifference(
        label,
        len(pairs),
        float(x.mean()),
        float(y.mean()),
        float(y.mean() - x.mean()),
        float(low),
        float(high),
        only_first,
        only_second,
        mcnemar_p(only_first, only_second),
    )


def comparison_table(first: RunResult, second: RunResult) -> str:
    """Markdown: overall, per part and per category, second arm minus first."""
    rows = [paired_difference(first, second), paired_difference(first, second, part="closed")]
    rows.append(paired_difference(first, second, part="open"))
    for key in sorted({k for it in second.items for k in it.categories}):
        for value in sorted({it.categories.get(key, "") for it in second.items}):
            rows.append(paired_difference(first, second, category=(key, value)))
    title = f"{second.answerer} minus {first.answerer} ({second.scoring} scoring)"
    return "\n".join([f"## {title}", "", HEADER, *[r.row() for r in rows if r.n]]) + "\n"
