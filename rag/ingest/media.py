"""Decoded media shared by the DICOM, video and image readers.

Every reader returns a :class:`DecodedMedia`: the frames as ``uint8`` with a channel axis that says
whether the source is colour (3) or grayscale (1), the frame timing and where it came from, and the
ultrasound regions the source declares. Grayscale is kept as one channel on purpose: it is never
dropped and never silently expanded to three channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "IMAGE_REGION_DATA_TYPES",
    "DecodedMedia",
    "MediaKind",
    "TimingSource",
    "UltrasoundRegion",
]

MediaKind = Literal["cine", "still"]
"""``"cine"``: several frames in time; ``"still"``: one frame."""

TimingSource = Literal["FrameTime", "FrameTimeVector", "CineRate", "RecommendedDisplayFrameRate", "container", "none"]
"""Where ``frame_time_ms`` was read: a DICOM attribute keyword, the video container, or nowhere."""

REGION_SPATIAL_FORMAT_2D = 0x0001
"""RegionSpatialFormat (0018,6012) defined term for a 2D tissue or flow image (PS3.3 C.8.5.5.1.1)."""

IMAGE_REGION_DATA_TYPES: frozenset[int] = frozenset({0x0001, 0x0002, 0x000F})
"""RegionDataType (0018,6014) defined terms that carry an image: tissue, colour flow, integrated
backscatter. The others are spectral Doppler, traces (ECG 0x000A, pulse, volume, ...) and grey/colour
bars (PS3.3 C.8.5.5.1.2)."""


@dataclass(frozen=True)
class UltrasoundRegion:
    """One item of the DICOM Sequence of Ultrasound Regions (0018,6011).

    Bounds are inclusive pixel coordinates, as in RegionLocationMinX0 / MinY0 / MaxX1 / MaxY1.
    """

    x0: int
    y0: int
    x1: int
    y1: int
    spatial_format: int
    data_type: int
    flags: int

    @property
    def is_image_region(self) -> bool:
        """True for a 2D tissue or colour-flow image region.

        Spectral Doppler, M-mode, waveform (ECG and other traces) and graphics regions are not image
        regions, nor are grey or colour bars even when a device labels them 2D.
        """
        return self.spatial_format == REGION_SPATIAL_FORMAT_2D and self.data_type in IMAGE_REGION_DATA_TYPES

    @property
    def width(self) -> int:
        """Width in pixels (bounds are inclusive)."""
        return self.x1 - self.x0 + 1

    @property
    def height(self) -> int:
        """Height in pixels (bounds are inclusive)."""
        return self.y1 - self.y0 + 1


@dataclass(frozen=True, eq=False)
class DecodedMedia:
    """Frames decoded from one DICOM instance, video file or still image.

    Attributes:
        frames: ``(T, H, W, 3)`` uint8 RGB, or ``(T, H, W, 1)`` uint8 for a grayscale source.
            A still has ``T == 1``.
        frame_time_ms: time between consecutive frames in milliseconds, ``None`` when unknown or for
            a still.
        timing_source: where ``frame_time_ms`` came from.
        regions: the ultrasound regions the source declares (empty when it declares none).
        photometric: colour space or pixel format of the source as stored (``"PALETTE COLOR"``,
            ``"YBR_FULL_422"``, ``"yuv420p"``, ``"RGB"``, ...), before conversion to RGB / gray.
        source_frames: number of frames in the source.
        kind: ``"cine"`` or ``"still"``.
    """

    frames: np.ndarray
    frame_time_ms: float | None
    timing_source: TimingSource
    regions: tuple[UltrasoundRegion, ...]
    photometric: str
    source_frames: int
    kind: MediaKind

    def __post_init__(self) -> None:
        shape = self.frames.shape
        if self.frames.dtype != np.uint8 or self.frames.ndim != 4 or shape[-1] not in (1, 3):
            raise ValueError(f"frames must be (T, H, W, 1 or 3) uint8, got shape {shape} dtype {self.frames.dtype}")
        if shape[0] < 1 or shape[1] < 1 or shape[2] < 1:
            raise ValueError(f"frames must hold at least one non-empty frame, got shape {shape}")
        if self.frame_time_ms is not None and not (np.isfinite(self.frame_time_ms) and self.frame_time_ms > 0):
            raise ValueError(f"frame_time_ms must be a positive finite number or None, got {self.frame_time_ms}")

    @property
    def is_grayscale(self) -> bool:
        """True when the frames have a single channel."""
        return bool(self.frames.shape[-1] == 1)

    @property
    def n_frames(self) -> int:
        """Number of decoded frames ``T``."""
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        """Frame height ``H`` in pixels."""
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        """Frame width ``W`` in pixels."""
        return int(self.frames.shape[2])

    @property
    def fps(self) -> float | None:
        """Frames per second derived from ``frame_time_ms``, ``None`` when unknown."""
        return None if self.frame_time_ms is None else 1000.0 / self.frame_time_ms

    @property
    def image_regions(self) -> tuple[UltrasoundRegion, ...]:
        """The regions that hold a 2D tissue or colour-flow image."""
        return tuple(r for r in self.regions if r.is_image_region)
