"""Time-based frame sampling and the crop / resize that turn decoded media into encoder input.

Frames are chosen by time, not by position: output frame ``k`` shows the source at
``t_k = k * stride / target_fps`` seconds from the start, so a 76 ms cine and a 20 ms cine sampled with
the same settings cover the same stretch of the cardiac cycle. A clip shorter than the window is looped
(cardiac cines are recorded over whole beats) instead of being padded with black frames, and the
number of looped samples is reported.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from rag.core.errors import InvalidMediaError
from rag.ingest.mask import SectorMask, apply_mask
from rag.ingest.media import DecodedMedia

__all__ = ["FrameSampling", "PreparedClip", "preprocess", "sample_indices"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class FrameSampling:
    """Which source frames a clip is made of.

    Attributes:
        indices: ``(frames,)`` int64 source frame indices, one per output frame.
        real: output frames taken during the first pass through the source.
        looped: output frames taken after the source ran out and was restarted from its first frame.
        source_fps: the source frame rate the times were matched against.
        timing_assumed: True when the source frame time was unknown and ``target_fps`` was assumed.
    """

    indices: np.ndarray
    real: int
    looped: int
    source_fps: float
    timing_assumed: bool


@dataclass(frozen=True, eq=False)
class PreparedClip:
    """A masked, time-sampled, square-cropped and resized clip.

    Attributes:
        pixels: ``(frames, size, size, C)`` uint8, ``C`` = 3 (RGB) or 1 (gray, as decoded); zero outside
            the sector and in the padding that made the crop square.
        indices: ``(frames,)`` int64 source frame index of each output frame.
        fps_used: the source frame rate the sampling times were matched against (``target_fps`` when
            the source timing was unknown, see ``timing_assumed``).
        looped: output frames that repeat the clip from its start because the source was too short.
        real: output frames from the first pass through the source (``real + looped == frames``).
        timing_assumed: True when the source frame time was unknown.
        crop: ``(y0, x0, y1, x1)`` half-open box of the source frame that was kept (the sector's
            bounding box) before padding to a square.
        target_fps: the output frame rate before striding.
        stride: output frames are ``stride`` frames of ``target_fps`` apart.
    """

    pixels: np.ndarray
    indices: np.ndarray
    fps_used: float
    looped: int
    real: int
    timing_assumed: bool
    crop: tuple[int, int, int, int]
    target_fps: float
    stride: int

    @property
    def is_grayscale(self) -> bool:
        """True when the pixels have one channel."""
        return bool(self.pixels.shape[-1] == 1)


def sample_indices(
    n_frames: int, frame_time_ms: float | None, *, frames: int, stride: int, target_fps: float
) -> FrameSampling:
    """Pick ``frames`` source frames at times ``t_k = k * stride / target_fps`` seconds.

    Each time is matched to the nearest source frame (frame ``i`` shows time ``i * frame_time``). Once
    the times run past the last source frame the clip is looped: the time is taken modulo the clip's
    duration ``n_frames * frame_time``.

    Args:
        n_frames: frames in the source (1 for a still: every sample is frame 0).
        frame_time_ms: source frame time in milliseconds; ``None`` when unknown, in which case the
            source is assumed to run at ``target_fps`` and ``timing_assumed`` is set.
        frames: output frames.
        stride: output frames are ``stride`` frames of ``target_fps`` apart.
        target_fps: frame rate the encoder expects before striding.

    Returns:
        :class:`FrameSampling` with ``(frames,)`` int64 indices and the real / looped counts.

    Raises:
        ValueError: a count, stride, rate or frame time that is not positive.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be at least 1, got {n_frames}")
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    if stride < 1:
        raise ValueError(f"stride must be at least 1, got {stride}")
    if not (math.isfinite(target_fps) and target_fps > 0):
        raise ValueError(f"target_fps must be a positive number, got {target_fps}")
    if frame_time_ms is not None and not (math.isfinite(frame_time_ms) and frame_time_ms > 0):
        raise ValueError(f"frame_time_ms must be a positive number or None, got {frame_time_ms}")
    timing_assumed = frame_time_ms is None
    source_fps = target_fps if frame_time_ms is None else 1000.0 / frame_time_ms
    # Position of t_k in source frames; floor(x + 0.5) rounds halves up, independent of parity.
    positions = np.arange(frames, dtype=np.float64) * (stride * source_fps / target_fps)
    unwrapped = np.floor(positions + 0.5 + 1e-9).astype(np.int64)
    real = int(np.count_nonzero(unwrapped < n_frames))
    indices = unwrapped % n_frames
    return FrameSampling(
        indices=indices,
        real=real,
        looped=frames - real,
        source_fps=float(source_fps),
        timing_assumed=timing_assumed,
    )


def preprocess(
    media: DecodedMedia,
    mask: SectorMask,
    *,
    frames: int,
    stride: int,
    target_fps: float,
    size: int,
) -> PreparedClip:
    """Mask, sample by time, crop to the sector and resize.

    The crop is the bounding box of the mask, made square by padding with zeros (the sector is never
    cut), then resized to ``size x size`` with ``cv2.INTER_AREA``. Pass ``frames=1`` for a still; a still
    sampled with more frames repeats its only frame and reports the repeats as ``looped``.

    Args:
        media: decoded frames ``(T, H, W, C)`` uint8.
        mask: the sector of ``media`` (``(H, W)`` bool).
        frames: output frames.
        stride: output frames are ``stride`` frames of ``target_fps`` apart.
        target_fps: frame rate the encoder expects before striding.
        size: output height and width in pixels.

    Returns:
        :class:`PreparedClip` with ``pixels`` ``(frames, size, size, C)`` uint8.

    Raises:
        InvalidMediaError: the mask does not fit the frames or is empty.
        ValueError: a non-positive ``frames``, ``stride``, ``target_fps`` or ``size``.
    """
    import cv2

    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    if mask.mask.shape != (media.height, media.width):
        raise InvalidMediaError(
            f"the sector mask is {mask.mask.shape[1]}x{mask.mask.shape[0]} but the frames are "
            f"{media.width}x{media.height}"
        )
    box = mask.bbox
    if box is None:
        raise InvalidMediaError("the sector mask is empty: nothing of the frame would be kept")
    sampling = sample_indices(media.n_frames, media.frame_time_ms, frames=frames, stride=stride, target_fps=target_fps)
    y0, x0, y1, x1 = box
    unique, inverse = np.unique(sampling.indices, return_inverse=True)
    cropped = apply_mask(media.frames[unique, y0:y1, x0:x1], mask.mask[y0:y1, x0:x1])
    squared = _pad_square(cropped)
    channels = squared.shape[-1]
    out = np.empty((unique.size, size, size, channels), dtype=np.uint8)
    for position, frame in enumerate(squared):
        resized = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
        out[position] = resized.reshape(size, size, channels)
    if sampling.timing_assumed and media.n_frames > 1:
        logger.debug("frame time unknown: assumed %.1f fps for %d source frames", target_fps, media.n_frames)
    if sampling.looped:
        logger.debug("source of %d frame(s) looped for %d of %d samples", media.n_frames, sampling.looped, frames)
    return PreparedClip(
        pixels=np.ascontiguousarray(out[inverse.reshape(-1)]),
        indices=sampling.indices,
        fps_used=sampling.source_fps,
        looped=sampling.looped,
        real=sampling.real,
        timing_assumed=sampling.timing_assumed,
        crop=box,
        target_fps=float(target_fps),
        stride=stride,
    )


def _pad_square(frames: np.ndarray) -> np.ndarray:
    """Centre ``(T, h, w, C)`` frames on a zero ``(T, s, s, C)`` canvas with ``s = max(h, w)``."""
    count, height, width, channels = frames.shape
    side = max(height, width)
    if height == width:
        return frames
    canvas = np.zeros((count, side, side, channels), dtype=frames.dtype)
    top, left = (side - height) // 2, (side - width) // 2
    canvas[:, top : top + height, left : left + width] = frames
    return canvas
