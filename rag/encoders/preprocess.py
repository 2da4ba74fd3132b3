"""Stored clips and stills -> normalised input tensors, following an encoder's :class:`Preprocessing`.

Stored clips are ``(T, S, S, C)`` uint8 (C = 1 grayscale or 3 RGB), already sampled in time by the
ingestion stage (frame k at ``k * stride / target_fps`` seconds). Here grayscale is repeated to three
channels, frames are resized to ``size`` when ``S`` differs (bilinear, antialiased), the first
``frames`` frames are kept (shorter clips are looped from the start) and pixels on the 0-255 scale
are normalised as ``(pixel - mean) / std``.

Still images go through the same video tower as 1-frame clips (:func:`image_to_tensor`), so stills and
clips share one embedding space.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from rag.core.errors import EncoderInputError
from rag.encoders.spec import Preprocessing


def _resized(pixels: np.ndarray, pre: Preprocessing, keep: int) -> torch.Tensor:
    """(T, S, S, C) uint8 -> first ``keep`` frames as (keep, 3, size, size) float32 on the 0-255 scale."""
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8 or pixels.ndim != 4:
        got = f"{pixels.shape} {pixels.dtype}" if isinstance(pixels, np.ndarray) else type(pixels).__name__
        raise EncoderInputError(f"clip pixels must be a (T, S, S, C) uint8 array, got {got}")
    t, h, w, c = pixels.shape
    if t < 1 or h < 1 or w < 1 or c not in (1, 3):
        raise EncoderInputError(
            f"clip pixels must be (T, S, S, C) with T >= 1 and C = 1 (grayscale) or 3 (RGB), got {pixels.shape}"
        )
    if h != w:
        raise EncoderInputError(
            f"clip frames must be square (stored clips are (T, S, S, C)), got {h}x{w}; crop them to a square first"
        )
    x = torch.from_numpy(np.ascontiguousarray(pixels[:keep])).permute(0, 3, 1, 2).float()
    if h != pre.size:
        x = F.interpolate(x, size=(pre.size, pre.size), mode="bilinear", align_corners=False, antialias=True)
    if c == 1:
        x = x.expand(-1, 3, -1, -1)
    return x


def normalise(x: torch.Tensor, pre: Preprocessing, *, channel_dim: int = 1) -> torch.Tensor:
    """Pixels on the 0-255 scale (any float or uint8 tensor, RGB along ``channel_dim``) -> ``(x - mean) / std``."""
    shape = [1] * x.ndim
    shape[channel_dim] = 3
    mean = torch.tensor(pre.mean, dtype=torch.float32).view(shape)
    std = torch.tensor(pre.std, dtype=torch.float32).view(shape)
    return (x.float() - mean) / std


def _frames_tensor(pixels: np.ndarray, pre: Preprocessing, keep: int) -> torch.Tensor:
    """(T, S, S, C) uint8 -> first ``keep`` frames as (keep, 3, size, size) float32, normalised."""
    return normalise(_resized(pixels, pre, keep), pre)


def _looped(n: int, pre: Preprocessing) -> torch.Tensor:
    return torch.arange(pre.frames) % n


def clip_pixels(pixels: np.ndarray, pre: Preprocessing) -> np.ndarray:
    """One stored clip -> what the video tower reads, before normalisation, kept as uint8.

    Returns:
        (pre.frames, pre.size, pre.size, 3) uint8: the frames :func:`clip_to_tensor` takes (looped when
        short), resized the same way, rounded. A training cache stores these.

    Raises:
        EncoderInputError: as :func:`clip_to_tensor`.
    """
    n = min(int(pixels.shape[0]) if isinstance(pixels, np.ndarray) and pixels.ndim == 4 else 1, pre.frames)
    x = _resized(pixels, pre, n)[_looped(n, pre)]
    out: np.ndarray = x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    return out


def clip_to_tensor(pixels: np.ndarray, pre: Preprocessing) -> torch.Tensor:
    """One stored clip -> the video tower's input.

    Args:
        pixels: (T, S, S, C) uint8 as stored, C = 1 (grayscale, repeated to 3 channels) or 3 (RGB).
        pre: the encoder's preprocessing (``encoder.spec.preprocessing``).

    Returns:
        (3, pre.frames, pre.size, pre.size) float32, ``(pixel - mean) / std`` with pixels on the 0-255
        scale. The first ``pre.frames`` frames are kept; a shorter clip is looped from its start.

    Raises:
        EncoderInputError: wrong dtype, rank, channel count, or non-square frames.
    """
    n = min(int(pixels.shape[0]) if isinstance(pixels, np.ndarray) and pixels.ndim == 4 else 1, pre.frames)
    x = _frames_tensor(pixels, pre, n)
    if n < pre.frames:
        x = x[_looped(n, pre)]
    return x.permute(1, 0, 2, 3).contiguous()


def batch_clips(clips: Sequence[np.ndarray], pre: Preprocessing) -> torch.Tensor:
    """Stored clips -> (B, 3, pre.frames, pre.size, pre.size) float32, normalised (see :func:`clip_to_tensor`)."""
    if len(clips) == 0:
        raise EncoderInputError("batch_clips got no clips")
    return torch.stack([clip_to_tensor(c, pre) for c in clips])


def image_to_tensor(image: np.ndarray, pre: Preprocessing) -> torch.Tensor:
    """One still image -> a 1-frame clip for the video tower.

    Args:
        image: (S, S) or (S, S, C) or (1, S, S, C) uint8, C = 1 or 3.
        pre: the encoder's preprocessing.

    Returns:
        (3, 1, pre.size, pre.size) float32, normalised like clips. ``EchoEncoder.encode_image`` takes a
        batch of these (and repeats the frame for towers that need ``pre.frames`` frames).
    """
    if isinstance(image, np.ndarray) and image.ndim == 2:
        image = image[None, :, :, None]
    elif isinstance(image, np.ndarray) and image.ndim == 3:
        image = image[None]
    if isinstance(image, np.ndarray) and image.ndim == 4 and image.shape[0] != 1:
        raise EncoderInputError(f"image_to_tensor takes one image, got {image.shape[0]} frames; use clip_to_tensor")
    return _frames_tensor(image, pre, 1).permute(1, 0, 2, 3).contiguous()


def batch_images(images: Sequence[np.ndarray], pre: Preprocessing) -> torch.Tensor:
    """Still images -> (B, 3, 1, pre.size, pre.size) float32, normalised (see :func:`image_to_tensor`)."""
    if len(images) == 0:
        raise EncoderInputError("batch_images got no images")
    return torch.stack([image_to_tensor(im, pre) for im in images])
