"""Decode video files (through PyAV) and still images (through Pillow) into
:class:`~rag.ingest.media.DecodedMedia`.

Containers and image files cannot say whether the content is grayscale, so both readers apply the same
rule: when practically every pixel of every frame has R == G == B, the frames are kept as one channel.
Dimensions are checked from the stream or file header before pixels are decoded.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from rag.core.errors import DecodeError, InvalidMediaError, UnsupportedInputError
from rag.ingest.media import DecodedMedia

__all__ = ["GRAY_COLOUR_FRACTION", "GRAY_SPREAD_TOLERANCE", "decode_image", "decode_video", "to_grayscale_if_gray"]

logger = logging.getLogger(__name__)

GRAY_SPREAD_TOLERANCE = 16
"""A pixel whose max(R, G, B) - min(R, G, B) exceeds this counts as coloured (lossy chroma noise on a
gray source stays well below it)."""

GRAY_COLOUR_FRACTION = 1e-4
"""Frames are gray when at most this fraction of their pixels are coloured. A burned-in coloured ECG
trace or colour Doppler exceeds it by far."""

_GRAY_IMAGE_MODES = ("1", "L", "I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def decode_video(path: Path, *, max_frames: int, max_pixels_per_frame: int) -> DecodedMedia:
    """Decode every frame of the first video stream of ``path`` (MP4, AVI, MOV, ...).

    Args:
        path: the video file.
        max_frames: largest number of frames accepted.
        max_pixels_per_frame: largest ``width * height`` accepted.

    Returns:
        :class:`DecodedMedia` of kind ``"cine"`` (``"still"`` for a one-frame video) with ``frames``
        ``(T, H, W, 3)`` uint8 RGB, or ``(T, H, W, 1)`` uint8 when the video is gray. The frame time
        comes from the stream's average frame rate, else from the spacing of presentation timestamps
        (``timing_source="container"``); ``photometric`` is the stream's pixel format.

    Raises:
        DecodeError: the file cannot be opened or decoded as a video.
        InvalidMediaError: no video stream, zero frames, or a limit exceeded.
    """
    import av

    try:
        container = av.open(str(path), mode="r")
    except FileNotFoundError:
        raise
    except av.error.FFmpegError as e:
        raise DecodeError(f"cannot open the file as a video: {_reason(e, path)}") from e
    with container:
        if not container.streams.video:
            raise InvalidMediaError(f"the file has no video stream ({len(container.streams)} other stream(s))")
        stream = container.streams.video[0]
        width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
        _check_frame_size(width, height, max_pixels_per_frame)
        declared = int(stream.frames or 0)
        if declared > max_frames:
            raise InvalidMediaError(
                f"the video declares {declared} frames, more than max_frames = {max_frames}; "
                "raise the limit if the file is genuine"
            )
        pixel_format = str(stream.codec_context.pix_fmt or "unknown")
        frames: list[np.ndarray] = []
        pts: list[int] = []
        try:
            for frame in container.decode(stream):
                if len(frames) >= max_frames:
                    raise InvalidMediaError(
                        f"the video holds more than max_frames = {max_frames} frames; "
                        "raise the limit if the file is genuine"
                    )
                _check_frame_size(int(frame.width), int(frame.height), max_pixels_per_frame)
                frames.append(frame.to_ndarray(format="rgb24"))
                if frame.pts is not None:
                    pts.append(int(frame.pts))
        except av.error.FFmpegError as e:
            raise DecodeError(f"cannot decode the video after {len(frames)} frame(s): {_reason(e, path)}") from e
        if not frames:
            raise InvalidMediaError("the video stream holds no decodable frame")
        if len({f.shape for f in frames}) != 1:
            raise InvalidMediaError(f"the video changes frame size mid-stream: {sorted({f.shape for f in frames})}")
        frame_time_ms = _container_frame_time_ms(stream.average_rate, stream.time_base, pts)
    clip = to_grayscale_if_gray(np.stack(frames))
    logger.debug(
        "decoded video: %d frame(s) %dx%d, %s, gray=%s, frame time %s ms",
        clip.shape[0],
        clip.shape[2],
        clip.shape[1],
        pixel_format,
        clip.shape[-1] == 1,
        frame_time_ms,
    )
    return DecodedMedia(
        frames=clip,
        frame_time_ms=frame_time_ms if clip.shape[0] > 1 else None,
        timing_source="container" if frame_time_ms is not None and clip.shape[0] > 1 else "none",
        regions=(),
        photometric=pixel_format,
        source_frames=max(declared, clip.shape[0]),
        kind="cine" if clip.shape[0] > 1 else "still",
    )


def decode_image(path: Path, *, max_pixels_per_frame: int) -> DecodedMedia:
    """Decode a still image (PNG, JPEG, ...) with Pillow.

    The size is read from the header and checked before the pixels are loaded.

    Returns:
        :class:`DecodedMedia` of kind ``"still"``, ``timing_source="none"``, ``frames`` ``(1, H, W, 3)``
        uint8 RGB or ``(1, H, W, 1)`` uint8 for a gray image (gray mode, or RGB with R == G == B).
        16-bit images are mapped to 8 bits with their minimum and maximum. Alpha is dropped.
        ``photometric`` is the Pillow mode of the file (``"L"``, ``"RGB"``, ``"P"``, ...).

    Raises:
        DecodeError: the file is not a readable image, or its data is truncated.
        InvalidMediaError: zero or too many pixels.
        UnsupportedInputError: an animated image with several frames.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as e:
        raise DecodeError(f"cannot open the file as an image: {_reason(e, path)}") from e
    with image:
        width, height = image.size
        _check_frame_size(width, height, max_pixels_per_frame)
        n_frames = int(getattr(image, "n_frames", 1))
        if n_frames > 1:
            raise UnsupportedInputError(
                f"animated images are not read ({n_frames} frames); convert it to a video (MP4) to ingest it as a cine"
            )
        mode = str(image.mode)
        try:
            pixels = _image_pixels(image, mode)
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise DecodeError(f"cannot decode the image pixels: {_reason(e, path)}") from e
    frames = pixels[np.newaxis]
    if frames.shape[-1] == 3:
        frames = to_grayscale_if_gray(frames)
    return DecodedMedia(
        frames=frames,
        frame_time_ms=None,
        timing_source="none",
        regions=(),
        photometric=mode,
        source_frames=1,
        kind="still",
    )


def to_grayscale_if_gray(frames: np.ndarray) -> np.ndarray:
    """Keep one channel when the frames are gray.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB.

    Returns:
        ``(T, H, W, 1)`` uint8 (the mean of the three channels) when at most
        :data:`GRAY_COLOUR_FRACTION` of the pixels spread more than :data:`GRAY_SPREAD_TOLERANCE`
        across channels; otherwise ``frames`` unchanged.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected (T, H, W, 3) frames, got shape {frames.shape}")
    coloured = 0
    for frame in frames:
        high = np.maximum(np.maximum(frame[..., 0], frame[..., 1]), frame[..., 2])
        low = np.minimum(np.minimum(frame[..., 0], frame[..., 1]), frame[..., 2])
        spread = high.astype(np.int16) - low
        coloured += int(np.count_nonzero(spread > GRAY_SPREAD_TOLERANCE))
    if coloured > GRAY_COLOUR_FRACTION * frames[..., 0].size:
        return frames
    gray = np.empty((*frames.shape[:3], 1), dtype=np.uint8)
    for index, frame in enumerate(frames):
        total = frame.astype(np.uint16).sum(axis=-1)
        gray[index, ..., 0] = (total + 1) // 3
    return gray


def _reason(error: Exception, path: Path) -> str:
    """One line describing ``error`` without the file path (file names may identify a patient)."""
    text = str(getattr(error, "strerror", None) or error)
    for name in (getattr(error, "filename", None), str(path), path.name):
        if name:
            text = text.replace(str(name), "<file>")
    return f"{type(error).__name__}: {' '.join(text.split())}"


def _check_frame_size(width: int, height: int, max_pixels_per_frame: int) -> None:
    if width <= 0 or height <= 0:
        raise InvalidMediaError(f"frames of {width} x {height} pixels: both must be at least 1")
    if width * height > max_pixels_per_frame:
        raise InvalidMediaError(
            f"frames of {width} x {height} = {width * height} pixels exceed "
            f"max_pixels_per_frame = {max_pixels_per_frame}; raise the limit if the file is genuine"
        )


def _container_frame_time_ms(average_rate: Fraction | None, time_base: Fraction | None, pts: list[int]) -> float | None:
    """Frame time from the stream's average rate, else from the median spacing of timestamps."""
    if average_rate is not None and average_rate > 0:
        return 1000.0 / float(average_rate)
    if time_base is not None and time_base > 0 and len(pts) >= 2:
        steps = np.diff(np.sort(np.asarray(pts, dtype=np.int64)))
        steps = steps[steps > 0]
        if steps.size:
            return float(np.median(steps)) * float(time_base) * 1000.0
    return None


def _image_pixels(image: Any, mode: str) -> np.ndarray:
    """``(H, W, 3)`` or ``(H, W, 1)`` uint8 from an open Pillow image."""
    if mode in _GRAY_IMAGE_MODES:
        values = np.asarray(image)
        if values.dtype == np.bool_:
            values = values.astype(np.uint8) * 255
        if values.dtype != np.uint8:
            values = values.astype(np.float64)
            low, high = float(values.min()), float(values.max())
            values = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
            values = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(values[..., np.newaxis])
    if mode in ("LA", "La"):
        return np.ascontiguousarray(np.asarray(image.getchannel("L"))[..., np.newaxis])
    rgb = np.asarray(image.convert("RGB"))
    return np.ascontiguousarray(rgb, dtype=np.uint8)
