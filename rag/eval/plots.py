"""Plots of an evaluation as self-contained SVG files a person can open in any browser (no plotting library).

- :func:`roc_grid`: one small ROC panel per finding and grade level, the AUROC and its interval in
  the title, the chance diagonal dashed;
- :func:`scatter`: predicted against true values (LVEF, PASP), the identity line dashed, the MAE in the
  title.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

import numpy as np

from rag.core.stats import roc_curve

__all__ = ["interval_bars", "roc_grid", "scatter"]

_PANEL = 180
_PAD = 28


def _svg(width: int, height: int, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="10">'
        f'<rect width="{width}" height="{height}" fill="white"/>' + "".join(body) + "</svg>\n"
    )


def _panel(x0: float, y0: float, title: str, points: np.ndarray, *, diagonal: bool = True) -> list[str]:
    """A square panel at (x0, y0) with axes 0..1 and a polyline of ``points`` ((n, 2), values in 0..1)."""
    size = _PANEL - 2 * _PAD
    left, top = x0 + _PAD, y0 + _PAD

    def xy(px: float, py: float) -> str:
        return f"{left + px * size:.1f},{top + (1 - py) * size:.1f}"

    out = [
        f'<rect x="{left}" y="{top}" width="{size}" height="{size}" fill="none" stroke="#888"/>',
        f'<text x="{x0 + _PANEL / 2}" y="{y0 + 16}" text-anchor="middle">{html.escape(title)}</text>',
    ]
    if diagonal:
        out.append(f'<polyline points="{xy(0, 0)} {xy(1, 1)}" fill="none" stroke="#bbb" stroke-dasharray="3,3"/>')
    if len(points):
        line = " ".join(xy(float(a), float(b)) for a, b in points)
        out.append(f'<polyline points="{line}" fill="none" stroke="#1f5fa8" stroke-width="1.5"/>')
    return out


def roc_grid(
    outcomes: Mapping[str, tuple[Sequence[float], Sequence[int]]],
    aurocs: Mapping[str, float],
    intervals: Mapping[str, tuple[float, float]],
    *,
    columns: int = 4,
) -> str:
    """ROC curves, one panel per key of ``outcomes`` (``finding>=level``: (scores, labels))."""
    keys = [k for k in sorted(outcomes) if 0 < sum(outcomes[k][1]) < len(outcomes[k][1])]
    rows = max(1, math.ceil(len(keys) / columns))
    body: list[str] = []
    for i, key in enumerate(keys):
        scores, labels = outcomes[key]
        fpr, tpr = roc_curve(scores, labels)
        low, high = intervals.get(key, (float("nan"), float("nan")))
        title = f"{key} {aurocs.get(key, float('nan')):.2f}"
        if not math.isnan(low):
            title += f" [{low:.2f}-{high:.2f}]"
        body += _panel((i % columns) * _PANEL, (i // columns) * _PANEL, title, np.column_stack([fpr, tpr]))
    if not keys:
        body.append('<text x="10" y="20">no finding has both classes among the test studies</text>')
    return _svg(columns * _PANEL, rows * _PANEL, body)


def scatter(pairs: Sequence[tuple[float, float]], name: str, unit: str) -> str:
    """Predicted (y) against true (x) values, on a common range; the MAE in the title."""
    if not pairs:
        return _svg(_PANEL * 2, 40, [f'<text x="10" y="20">no {html.escape(name)} prediction</text>'])
    values = np.asarray(pairs, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    span = (high - low) or 1.0
    mae = float(np.mean(np.abs(values[:, 0] - values[:, 1])))
    scale = 2
    size = _PANEL * scale - 2 * _PAD
    body = [
        f'<rect x="{_PAD}" y="{_PAD}" width="{size}" height="{size}" fill="none" stroke="#888"/>',
        f'<text x="{_PANEL}" y="16" text-anchor="middle">{html.escape(name)}: predicted (y) vs true (x), '
        f"MAE {mae:.2f} {html.escape(unit)}, n={len(values)}</text>",
        f'<text x="{_PAD}" y="{_PAD + size + 14}">{low:.0f}</text>',
        f'<text x="{_PAD + size}" y="{_PAD + size + 14}" text-anchor="end">{high:.0f}</text>',
        f'<polyline points="{_PAD},{_PAD + size} {_PAD + size},{_PAD}" fill="none" stroke="#bbb" '
        'stroke-dasharray="3,3"/>',
    ]
    for predicted, true in values:
        cx = _PAD + (true - low) / span * size
        cy = _PAD + (1 - (predicted - low) / span) * size
        body.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2.5" fill="#1f5fa8" fill-opacity="0.6"/>')
    return _svg(_PANEL * scale, _PANEL * scale, body)


def interval_bars(groups: Mapping[str, Sequence[tuple[str, float, float, float]]], title: str) -> str:
    """Accuracies with 95 % intervals: per group (e.g. closed / open / all) one bar per run.

    Args:
        groups: group label -> [(run label, mean, low, high)], values in 0..1.
    """
    runs = list(dict.fromkeys(r for bars in groups.values() for r, *_ in bars))
    colours = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3"]
    bar, gap, height, left, top = 22, 18, 200, 40, 30
    width = left + len(groups) * (len(runs) * bar + gap) + 20 + 170
    body = [f'<text x="{left}" y="16" font-size="12">{html.escape(title)}</text>']

    def y(v: float) -> float:
        return top + (1 - v) * height

    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        body.append(f'<line x1="{left}" x2="{width - 180}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>')
        body.append(f'<text x="{left - 6}" y="{y(tick) + 3:.1f}" text-anchor="end">{tick:.2f}</text>')
    x = left + gap / 2
    for label, bars in groups.items():
        start = x
        for run, mean, low, high in bars:
            if math.isnan(mean):
                x += bar
                continue
            colour = colours[runs.index(run) % len(colours)]
            body.append(
                f'<rect x="{x:.1f}" y="{y(mean):.1f}" width="{bar - 4}" height="{y(0) - y(mean):.1f}" fill="{colour}">'
                f"<title>{html.escape(run)}: {mean:.3f} [{low:.3f}, {high:.3f}]</title></rect>"
            )
            mid = x + (bar - 4) / 2
            body.append(f'<line x1="{mid:.1f}" x2="{mid:.1f}" y1="{y(low):.1f}" y2="{y(high):.1f}" stroke="black"/>')
            x += bar
        body.append(
            f'<text x="{(start + x) / 2:.1f}" y="{top + height + 14}" text-anchor="middle">{html.escape(label)}</text>'
        )
        x += gap
    for i, run in enumerate(runs):
        ly = top + 14 * i
        body.append(f'<rect x="{width - 170}" y="{ly}" width="10" height="10" fill="{colours[i % len(colours)]}"/>')
        body.append(f'<text x="{width - 155}" y="{ly + 9}">{html.escape(run)}</text>')
    return _svg(int(width), top + height + 30, body)
