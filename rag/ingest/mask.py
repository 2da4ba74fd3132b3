"""Find the ultrasound sector in decoded frames and blank everything else.

Burned-in text, the ECG trace, logos, colour and grey bars and calibration marks lie outside the
imaging sector; a model that sees them learns the scanner's screen layout instead of the heart. Two
sources of the sector, in order of trust:

``"regions"``
    The DICOM Sequence of Ultrasound Regions declares 2D tissue / colour-flow rectangles. The mask is
    their union minus any non-image region drawn inside them (grey bar, colour bar, trace), refined
    inside each rectangle by the pixel rule below so that the black corners of a fan, with the labels
    printed there, are dropped. The ECG strip is its own waveform region outside the 2D rectangle.
``"pixels"``
    No usable region: the sector is found from the pixels. In a cine, speckle and flow change from one
    frame to the next nearly every time, while text is static and an ECG trace changes a pixel only
    when the sweep passes it. Pixels that change often are kept, thin structures (text strokes, the
    ECG curve, calibration dots) are removed by a morphological opening, the large connected
    components remain and their convex hull, filled, is the sector: it takes back the static tissue
    and the dark cavities inside. A still has no motion, so the rule uses non-black, non-white-text
    intensity instead.

``"none"`` means nothing could be found and the mask keeps the whole frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

from rag.ingest.media import DecodedMedia, UltrasoundRegion

__all__ = ["MaskSource", "SectorMask", "apply_mask", "sector_mask"]

logger = logging.getLogger(__name__)

MaskSource = Literal["regions", "pixels", "none"]

_CHANGE_LEVEL = 10
"""A pixel changes between two frames when its brightest channel moves by more than this (0..255)."""
_CHANGE_FREQUENCY = 0.25
"""Fraction of frame pairs in which a pixel must change to count as moving sector content."""
_LAG_MS = 33.0
"""Frames compared for change are about this far apart in time (one frame when timing is unknown)."""
_MAX_PAIRS = 48
"""At most this many frame pairs are compared (evenly spread over the clip)."""
_DARK_LEVEL = 12
"""Still images: pixels at or below this are background."""
_TEXT_LEVEL = 245
_TEXT_SPREAD = 12
"""Still images: near-white gray pixels (text, marks) are not sector evidence."""
_OVERLAY_SPREAD = 60
"""Strongly coloured pixels inside a tissue-only region are overlays (cursors, labels)."""
_MIN_STATIC_FRAMES = 4
_STATIC_TOLERANCE = 3
_OVERLAY_LEVEL = 96
_MAX_STATIC_FRACTION = 0.8
"""Cines: a pixel whose brightest channel stays within the tolerance over at least that many frames,
and is bright or strongly coloured, is a graphic overlay; not applied when more than the given
fraction of the sector is static (a frozen loop)."""
_MIN_DENSITY = 0.4
"""Fraction of evidence pixels a neighbourhood needs to count as sector."""
_MIN_COMPONENT_FRACTION = 0.02
"""The largest component must cover this fraction of the searched area, else there is no sector."""
_SIDE_COMPONENT_FRACTION = 0.03
_SIDE_COMPONENT_ASPECT = 0.25
"""Other components at least this large relative to the largest join the hull (e.g. a fan's apex),
unless they are long thin bands (short side under the given fraction of the long side), the shape of
a trace strip."""
_MIN_REFINED_FRACTION = 0.3
"""Inside a declared region the refined sector must keep this fraction of the rectangle, else the
whole rectangle is kept."""


@dataclass(frozen=True, eq=False)
class SectorMask:
    """Where the imaging sector is.

    Attributes:
        mask: ``(H, W)`` bool, True inside the sector.
        source: how it was found (``"regions"``, ``"pixels"``) or ``"none"`` (all True).
    """

    mask: np.ndarray
    source: MaskSource

    def __post_init__(self) -> None:
        if self.mask.ndim != 2 or self.mask.dtype != np.bool_:
            raise ValueError(f"mask must be (H, W) bool, got shape {self.mask.shape} dtype {self.mask.dtype}")

    @property
    def coverage(self) -> float:
        """Fraction of the frame inside the sector, in [0, 1]."""
        return float(np.count_nonzero(self.mask)) / float(self.mask.size)

    @property
    def bbox(self) -> tuple[int, int, int, int] | None:
        """``(y0, x0, y1, x1)`` half-open bounding box of the sector, ``None`` when the mask is empty."""
        rows = np.flatnonzero(self.mask.any(axis=1))
        if rows.size == 0:
            return None
        cols = np.flatnonzero(self.mask.any(axis=0))
        return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def sector_mask(media: DecodedMedia) -> SectorMask:
    """The sector of ``media``, from its declared image regions when it has any, else from pixels.

    Returns:
        :class:`SectorMask` with an ``(H, W)`` bool mask (see the module docstring for the rules).
    """
    height, width = media.height, media.width
    image_regions = media.image_regions
    if image_regions:
        mask = _regions_mask(media, image_regions)
        if mask.any():
            _drop_static_overlays(media.frames, mask)
            logger.debug("sector from %d image region(s), coverage %.3f", len(image_regions), mask.mean())
            return SectorMask(mask=mask, source="regions")
        logger.debug("image regions are empty inside the frame; falling back to pixels")
    found = _pixel_sector(media.frames, media.frame_time_ms)
    if found is None:
        logger.debug("no sector found in %d frame(s) of %dx%d; keeping the whole frame", media.n_frames, width, height)
        return SectorMask(mask=np.ones((height, width), dtype=bool), source="none")
    _drop_static_overlays(media.frames, found)
    logger.debug("sector from pixels, coverage %.3f", found.mean())
    return SectorMask(mask=found, source="pixels")


def apply_mask(frames: np.ndarray, mask: np.ndarray | SectorMask) -> np.ndarray:
    """Zero every pixel outside the sector.

    Args:
        frames: ``(T, H, W, C)`` uint8.
        mask: ``(H, W)`` bool or a :class:`SectorMask`.

    Returns:
        A new ``(T, H, W, C)`` uint8 array, zero outside the mask.
    """
    keep = mask.mask if isinstance(mask, SectorMask) else mask
    if frames.ndim != 4 or keep.shape != frames.shape[1:3]:
        raise ValueError(f"mask of shape {keep.shape} does not fit frames of shape {frames.shape}")
    out: np.ndarray = frames * keep[np.newaxis, :, :, np.newaxis].astype(frames.dtype)
    return out


def _regions_mask(media: DecodedMedia, image_regions: tuple[UltrasoundRegion, ...]) -> np.ndarray:
    """Union of the refined image rectangles minus non-image regions drawn over them."""
    import cv2

    height, width = media.height, media.width
    mask = np.zeros((height, width), dtype=bool)
    for region in image_regions:
        ys, xs = slice(region.y0, region.y1 + 1), slice(region.x0, region.x1 + 1)
        box = media.frames[:, ys, xs]
        refined = _pixel_sector(box, media.frame_time_ms)
        area = box.shape[1] * box.shape[2]
        if refined is None or np.count_nonzero(refined) < _MIN_REFINED_FRACTION * area:
            mask[ys, xs] = True
        else:
            mask[ys, xs] |= refined
    for region in media.regions:
        if not region.is_image_region:
            mask[region.y0 : region.y1 + 1, region.x0 : region.x1 + 1] = False
    tissue_only = all(r.data_type == 0x0001 for r in image_regions)
    if tissue_only and not media.is_grayscale:
        # Colour inside a gray tissue image is an overlay (cursor, label), not data.
        frame = media.frames.max(axis=0).astype(np.int16)
        overlay = _channel_spread(frame) > _OVERLAY_SPREAD
        if overlay.any():
            grown = cv2.dilate(overlay.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
            mask &= ~grown
    return mask


def _drop_static_overlays(frames: np.ndarray, mask: np.ndarray) -> None:
    """Clear, in place, mask pixels of a cine that hold a bright or coloured value that never changes.

    Graphics drawn over the sector (colour-box outline, depth marks, cursors, labels) are identical
    in every frame; acquired tissue is not. Skipped for short or frozen clips, where "static" proves
    nothing.
    """
    import cv2

    if frames.shape[0] < _MIN_STATIC_FRAMES or not mask.any():
        return
    picked = _spread_indices(frames.shape[0], _MAX_PAIRS)
    low = high = _brightest(frames[picked[0]])
    colour = _channel_spread(frames[picked[0]])
    for index in picked[1:]:
        value = _brightest(frames[index])
        low, high = np.minimum(low, value), np.maximum(high, value)
        colour = np.minimum(colour, _channel_spread(frames[index]))
    static = (high - low) <= _STATIC_TOLERANCE
    if np.count_nonzero(static & mask) > _MAX_STATIC_FRACTION * np.count_nonzero(mask):
        return
    marked = static & ((low >= _OVERLAY_LEVEL) | (colour > _OVERLAY_SPREAD)) & mask
    if marked.any():
        grown = cv2.dilate(marked.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        mask &= ~grown


def _pixel_sector(frames: np.ndarray, frame_time_ms: float | None) -> np.ndarray | None:
    """``(H, W)`` bool sector of ``frames`` ``(T, H, W, C)`` uint8, or ``None`` when none is found."""
    import cv2

    _, height, width, _ = frames.shape
    evidence = _moving(frames, frame_time_ms) if frames.shape[0] > 1 else None
    if evidence is None or np.count_nonzero(evidence) < _MIN_COMPONENT_FRACTION * evidence.size:
        # A still, or a cine without motion (frozen loop): use intensity.
        evidence = _bright_not_text(frames)
    kernel = _odd(max(3.0, 0.025 * min(height, width)))
    # Speckle makes the evidence sparse: judge its local density, then drop thin structures.
    dense = (cv2.blur(evidence.astype(np.float32), (kernel, kernel)) >= _MIN_DENSITY).astype(np.uint8)
    opened = cv2.morphologyEx(dense, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel, kernel)))
    wide = 2 * kernel + 1
    closed = cv2.morphologyEx(opened, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (wide, wide)))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
    if count <= 1:
        return None
    areas = stats[1:, cv2.CC_STAT_AREA]
    largest = int(areas.max())
    if largest < _MIN_COMPONENT_FRACTION * height * width:
        return None
    sides = np.minimum(stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT])
    longs = np.maximum(stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT])
    compact = sides >= _SIDE_COMPONENT_ASPECT * longs
    chosen = 1 + np.flatnonzero((areas == largest) | ((areas >= _SIDE_COMPONENT_FRACTION * largest) & compact))
    points = cv2.findNonZero(np.isin(labels, chosen).astype(np.uint8))
    hull = cv2.convexHull(points)
    filled = np.zeros((height, width), dtype=np.uint8)
    cv2.fillPoly(filled, [hull], 1)
    sector: np.ndarray = filled.astype(bool)
    return sector


def _moving(frames: np.ndarray, frame_time_ms: float | None) -> np.ndarray | None:
    """Pixels of ``frames`` ``(T, H, W, C)`` uint8 that change in many frame pairs, ``(H, W)`` bool."""
    n_frames = frames.shape[0]
    lag = 1 if frame_time_ms is None else max(1, round(_LAG_MS / frame_time_ms))
    lag = min(lag, n_frames - 1)
    if n_frames - lag < 1:
        return None
    starts = _spread_indices(n_frames - lag, _MAX_PAIRS)
    changes = np.zeros(frames.shape[1:3], dtype=np.int32)
    for start in starts:
        later = _brightest(frames[start + lag]).astype(np.int16)
        diff = np.abs(later - _brightest(frames[start]))
        changes += diff > _CHANGE_LEVEL
    moving: np.ndarray = changes >= max(1.0, _CHANGE_FREQUENCY * starts.size)
    return moving


def _bright_not_text(frames: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool: pixels above the dark level in any frame that are not near-white gray text."""
    brightest = frames.max(axis=0)
    value = _brightest(brightest)
    spread = _channel_spread(brightest)
    text = (value >= _TEXT_LEVEL) & (spread <= _TEXT_SPREAD)
    evidence: np.ndarray = (value > _DARK_LEVEL) & ~text
    return evidence


def _spread_indices(count: int, most: int) -> np.ndarray:
    """At most ``most`` indices in ``range(count)``, evenly spread, as int64."""
    if count <= most:
        return np.arange(count, dtype=np.int64)
    return np.unique(np.linspace(0, count - 1, most).round().astype(np.int64))


def _odd(value: float) -> int:
    number = round(value)
    return int(number if number % 2 == 1 else number + 1)


def _brightest(frames: np.ndarray) -> np.ndarray:
    """``(..., C)`` -> ``(...)``: the largest channel value (same dtype)."""
    if frames.shape[-1] == 1:
        return frames[..., 0]
    out: np.ndarray = np.maximum(np.maximum(frames[..., 0], frames[..., 1]), frames[..., 2])
    return out


def _channel_spread(frames: np.ndarray) -> np.ndarray:
    """``(..., C)`` -> ``(...)`` int16: largest minus smallest channel value (0 for one channel)."""
    if frames.shape[-1] == 1:
        return np.zeros(frames.shape[:-1], dtype=np.int16)
    low = np.minimum(np.minimum(frames[..., 0], frames[..., 1]), frames[..., 2])
    out: np.ndarray = _brightest(frames).astype(np.int16) - low
    return out
