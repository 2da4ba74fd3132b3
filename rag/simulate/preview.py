"""A contact sheet of rendered clips: one end-diastolic frame per clip and a plot of LV area over time.

Drawn with OpenCV only, so it needs nothing beyond the project's own dependencies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from rag.simulate.render import RenderedClip

U8 = npt.NDArray[np.uint8]

_TILE_W = 320
_COLS = 4
# distinct line colours (RGB) for the area plot
_PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 99, 71),
    (65, 180, 255),
    (120, 220, 90),
    (255, 200, 40),
    (200, 120, 255),
    (255, 140, 200),
    (80, 230, 210),
    (230, 230, 230),
)


def _as_rgb(frame: np.ndarray) -> U8:
    rgb: U8 = np.repeat(frame[..., None], 3, axis=2) if frame.ndim == 2 else np.asarray(frame, dtype=np.uint8)
    return rgb


def _tile(clip: RenderedClip, tile_h: int) -> U8:
    """One frame of the clip scaled to the tile, with its view name: the first end-diastolic frame, or for
    colour-Doppler clips the frame ~150 ms later (mid-systole, when regurgitant jets show)."""
    k = clip.ed_frames[0] if clip.ed_frames else 0
    if clip.colour and clip.view.startswith(("Doppler", "Apical_Doppler")):
        k = min(k + round(0.15 * clip.fps), len(clip.frames) - 1)
    frame = _as_rgb(clip.frames[k])
    h, w = frame.shape[:2]
    scale = min(_TILE_W / w, tile_h / h)
    small = cv2.resize(frame, (max(int(w * scale), 1), max(int(h * scale), 1)), interpolation=cv2.INTER_AREA)
    tile = np.zeros((tile_h, _TILE_W, 3), dtype=np.uint8)
    y0, x0 = (tile_h - small.shape[0]) // 2, (_TILE_W - small.shape[1]) // 2
    tile[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
    kind = "colour" if clip.colour else "gray"
    label = f"{clip.view}  ({kind}, {len(clip.frames)} fr @ {clip.fps:.0f} Hz, f{k})"
    cv2.rectangle(tile, (0, tile_h - 18), (_TILE_W, tile_h), (0, 0, 0), -1)
    cv2.putText(tile, label, (4, tile_h - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (255, 255, 0), 1, cv2.LINE_AA)
    return tile


def _area_plot(clips: Sequence[RenderedClip], width: int, height: int) -> U8:
    """LV cavity area (% of the clip's largest) against frame index, ED frames marked with dots."""
    img = np.full((height, width, 3), 24, dtype=np.uint8)
    left, right, top, bottom = 44, width - 10, 26, height - 30
    cv2.putText(
        img,
        "LV cavity area (% of max) vs frame; dots = ED (R wave)",
        (left, 16),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.42,
        (230, 230, 230),
        1,
        cv2.LINE_AA,
    )
    with_lv = [c for c in clips if np.isfinite(c.lv_area_px).any()]
    n_max = max((len(c.frames) for c in with_lv), default=1)
    lo_pct = 30.0
    for pct in (40, 60, 80, 100):
        y = int(bottom - (pct - lo_pct) / (100 - lo_pct) * (bottom - top))
        cv2.line(img, (left, y), (right, y), (60, 60, 60), 1)
        cv2.putText(img, f"{pct}", (8, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (180, 180, 180), 1, cv2.LINE_AA)
    cv2.line(img, (left, bottom), (right, bottom), (150, 150, 150), 1)
    cv2.line(img, (left, top), (left, bottom), (150, 150, 150), 1)
    step = max(10, 10 * math.ceil(n_max / 80))
    for f in range(0, n_max, step):
        x = int(left + f / max(n_max - 1, 1) * (right - left))
        cv2.putText(img, str(f), (x - 6, bottom + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (180, 180, 180), 1, cv2.LINE_AA)
    for i, clip in enumerate(with_lv):
        colour = _PALETTE[i % len(_PALETTE)]
        area = clip.lv_area_px
        peak = float(np.nanmax(area))
        if peak <= 0:
            continue
        share = np.clip(100.0 * area / peak, lo_pct, 100.0)
        xs = left + np.arange(len(area)) / max(n_max - 1, 1) * (right - left)
        ys = bottom - (share - lo_pct) / (100 - lo_pct) * (bottom - top)
        pts = np.stack([xs, ys], axis=1)
        ok = np.isfinite(pts).all(axis=1)
        cv2.polylines(
            img, [np.round(pts[ok] * 16).astype(np.int32).reshape(-1, 1, 2)], False, colour, 1, cv2.LINE_AA, shift=4
        )
        for k in clip.ed_frames:
            if np.isfinite(ys[k]):
                cv2.circle(img, (int(xs[k]), int(ys[k])), 3, colour, -1, cv2.LINE_AA)
        fac = 100.0 * (1.0 - float(np.nanmin(area)) / peak)
        cv2.putText(
            img,
            f"{clip.view}  FAC {fac:.0f}%",
            (right - 170, top + 14 + 14 * i),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.38,
            colour,
            1,
            cv2.LINE_AA,
        )
    return img


def contact_sheet(clips: Sequence[RenderedClip], out: Path) -> Path:
    """Write a PNG grid of one end-diastolic frame per clip (labelled with its view) followed by a panel of
    LV area over time for the clips that show the LV. Returns ``out``."""
    if not clips:
        raise ValueError("contact_sheet needs at least one clip")
    aspect = max(c.frames.shape[1] / c.frames.shape[2] for c in clips)
    tile_h = round(_TILE_W * aspect) + 18
    tiles = [_tile(c, tile_h) for c in clips]
    cols = min(_COLS, len(tiles))
    rows = math.ceil(len(tiles) / cols)
    blank = np.zeros((tile_h, _TILE_W, 3), dtype=np.uint8)
    tiles += [blank] * (rows * cols - len(tiles))
    grid = np.vstack([np.hstack(tiles[r * cols : (r + 1) * cols]) for r in range(rows)])
    plot = _area_plot(clips, grid.shape[1], max(220, tile_h))
    sheet = np.vstack([grid, plot])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write the contact sheet to {out}")
    return out
