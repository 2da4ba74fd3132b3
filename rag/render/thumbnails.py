"""Clip thumbnails for the HTML page: one frame as a base64 PNG, the study's clips and its neighbours'."""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.core.clipfile import read_clip
from rag.core.errors import DecodeError
from rag.generate.report import (
    Report,
)
from rag.render.references import NEIGHBOUR_THUMBNAILS, THUMBNAIL_PX

if TYPE_CHECKING:
    from rag.store import Store

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# Clip thumbnails.
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Thumb:
    """A clip's middle frame as a PNG data URI, or why there is none."""

    data_uri: str | None
    reason: str = ""


@dataclass(frozen=True)
class ClipRef:
    """A clip to show: its ID, file (relative to the media folder) and view label."""

    clip_id: int
    path: str
    view: str | None


def frame_png(pixels: np.ndarray, size: int) -> bytes:
    """The middle frame of a clip as PNG bytes, longest side at most ``size`` pixels.

    Args:
        pixels: (T, H, W, C) uint8 with C = 1 (grayscale) or 3 (RGB), or (T, H, W) grayscale.

    Raises:
        ValueError: the array is not of that shape and dtype, or holds no frame.
    """
    from PIL import Image

    if pixels.dtype != np.uint8 or pixels.ndim not in (3, 4) or pixels.shape[0] == 0:
        raise ValueError(f"expected (T, H, W, C) uint8 frames, got {pixels.shape} {pixels.dtype}")
    frame = pixels[pixels.shape[0] // 2]
    if frame.ndim == 3:
        if frame.shape[2] == 1:
            frame = frame[..., 0]
        elif frame.shape[2] != 3:
            raise ValueError(f"expected 1 or 3 channels, got {frame.shape[2]}")
    image = Image.fromarray(np.ascontiguousarray(frame), mode="L" if frame.ndim == 2 else "RGB")
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


class Thumbnails:
    """Reads clip files under the media folder into PNG data URIs, once per file."""

    def __init__(self, media_dir: Path | None, size: int = THUMBNAIL_PX) -> None:
        self.media_dir = media_dir.resolve() if media_dir is not None else None
        self.size = size
        self._cache: dict[str, Thumb] = {}

    def get(self, clip_id: int, rel_path: str) -> Thumb:
        """The thumbnail of the clip stored at ``rel_path``; never raises for a bad or missing file."""
        if rel_path not in self._cache:
            self._cache[rel_path] = self._read(clip_id, rel_path)
        return self._cache[rel_path]

    def _read(self, clip_id: int, rel_path: str) -> Thumb:
        if self.media_dir is None:
            return Thumb(None, "No media folder given")
        path = (self.media_dir / rel_path).resolve()
        if not path.is_relative_to(self.media_dir):
            log.warning("clip %d: path is outside the media folder; not shown", clip_id)
            return Thumb(None, "Clip path outside the media folder")
        if not path.is_file():
            log.warning("clip %d: file missing under the media folder (%s)", clip_id, rel_path)
            return Thumb(None, "Clip file missing")
        try:
            pixels, _meta = read_clip(path)
            png = frame_png(pixels, self.size)
        except (DecodeError, ValueError) as e:
            log.warning("clip %d: cannot be shown (%s)", clip_id, e)
            return Thumb(None, "Clip file unreadable")
        return Thumb("data:image/png;base64," + base64.b64encode(png).decode("ascii"))


def pick_by_view(clips: Sequence[ClipRef], n: int, preferred: Sequence[str] = ()) -> list[ClipRef]:
    """Up to ``n`` clips, one per distinct view where possible.

    Views in ``preferred`` come first (in that order), then the other labelled views in clip order,
    then further clips (unlabelled ones, or more of a view already shown) to fill the ``n`` places.
    """
    by_view: dict[str, ClipRef] = {}
    for clip in clips:
        if clip.view is not None:
            by_view.setdefault(clip.view, clip)
    views = list(dict.fromkeys([*(v for v in preferred if v in by_view), *by_view]))
    picked = [by_view[v] for v in views][:n]
    chosen = {c.clip_id for c in picked}
    picked += [c for c in clips if c.clip_id not in chosen][: n - len(picked)]
    return picked


def study_row(report: Report) -> list[ClipRef]:
    """This study's clips for the comparison row: the most confident clip of each predicted view."""
    ranked = sorted(report.clips, key=lambda c: -(c.view_probability or 0.0))
    refs = [ClipRef(c.clip_id, c.path, c.view or c.stored_view) for c in ranked]
    return pick_by_view(refs, NEIGHBOUR_THUMBNAILS)


def neighbour_clips(store: Store, study_ids: Sequence[int]) -> dict[int, list[ClipRef]]:
    """The stored clips of each study in ``study_ids``, in clip ID order."""
    from sqlalchemy import select

    from rag.store import Clip, Series

    found: dict[int, list[ClipRef]] = {sid: [] for sid in study_ids}
    if not study_ids:
        return found
    stmt = (
        select(Series.study_id, Clip.id, Clip.path, Clip.view_label)
        .join(Clip.series)
        .where(Series.study_id.in_(list(study_ids)))
        .order_by(Series.study_id, Clip.id)
    )
    with store.session() as s:
        for study_id, clip_id, path, view in s.execute(stmt):
            found[study_id].append(ClipRef(clip_id, path, view))
    return found
