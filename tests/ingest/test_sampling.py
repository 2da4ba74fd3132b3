"""Time-based frame sampling, looping, square crop and resize."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pydicom
import pytest

from rag.core.errors import InvalidMediaError
from rag.ingest.dicom_decode import decode_dicom
from rag.ingest.mask import SectorMask, sector_mask
from rag.ingest.media import DecodedMedia
from rag.ingest.sampling import preprocess, sample_indices

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LIMITS: dict[str, int] = {"max_frames": 1024, "max_pixels_per_frame": 2048 * 2048}


def decode_shared(name: str) -> DecodedMedia:
    path = SHARED / "dicom" / name
    if not path.exists():
        pytest.skip(f"real test data not available: {path} (needs ../shared/data beside the repository)")
    return decode_dicom(pydicom.dcmread(path), **LIMITS)


def media_of(frames: np.ndarray, frame_time_ms: float | None) -> DecodedMedia:
    many = frames.shape[0] > 1
    return DecodedMedia(
        frames=frames,
        frame_time_ms=frame_time_ms,
        timing_source="FrameTime" if frame_time_ms else "none",
        regions=(),
        photometric="MONOCHROME2" if frames.shape[-1] == 1 else "RGB",
        source_frames=frames.shape[0],
        kind="cine" if many else "still",
    )


def expected_by_time(n_frames: int, frame_time_ms: float, frames: int, stride: int, target_fps: float) -> list[int]:
    """Nearest source frame to t_k = k * stride / target_fps, looping past the end."""
    out = []
    for k in range(frames):
        t_ms = 1000.0 * k * stride / target_fps
        out.append(math.floor(t_ms / frame_time_ms + 0.5) % n_frames)
    return out


def test_76_ms_clip_sampled_by_time_and_looped() -> None:
    sampling = sample_indices(10, 76.0, frames=16, stride=2, target_fps=30.0)
    # t_k = k / 15 s = 66.7 ms * k; nearest 76 ms frame; after frame 9 (at 684 ms) the clip loops.
    assert sampling.indices.tolist() == [0, 1, 2, 3, 4, 4, 5, 6, 7, 8, 9, 0, 1, 1, 2, 3]
    assert sampling.indices.tolist() == expected_by_time(10, 76.0, 16, 2, 30.0)
    assert sampling.indices.dtype == np.int64
    assert (sampling.real, sampling.looped) == (11, 5)
    assert sampling.source_fps == pytest.approx(1000 / 76)
    assert not sampling.timing_assumed


def test_fast_long_clip_skips_frames_and_does_not_loop() -> None:
    sampling = sample_indices(120, 20.0, frames=16, stride=2, target_fps=30.0)
    assert sampling.indices.tolist() == expected_by_time(120, 20.0, 16, 2, 30.0)
    assert sampling.indices[:4].tolist() == [0, 3, 7, 10]
    assert (sampling.real, sampling.looped) == (16, 0)


def test_unknown_timing_assumes_target_fps_and_says_so() -> None:
    sampling = sample_indices(20, None, frames=8, stride=2, target_fps=30.0)
    assert sampling.indices.tolist() == [0, 2, 4, 6, 8, 10, 12, 14]
    assert sampling.timing_assumed and sampling.source_fps == 30.0


def test_still_repeats_its_only_frame() -> None:
    one = sample_indices(1, None, frames=1, stride=2, target_fps=30.0)
    assert one.indices.tolist() == [0] and (one.real, one.looped) == (1, 0)
    many = sample_indices(1, None, frames=4, stride=2, target_fps=30.0)
    assert many.indices.tolist() == [0, 0, 0, 0] and (many.real, many.looped) == (1, 3)


@pytest.mark.parametrize(
    ("n_frames", "frame_time_ms", "frames", "stride", "target_fps", "message"),
    [
        (0, 76.0, 16, 2, 30.0, "n_frames"),
        (10, 0.0, 16, 2, 30.0, "frame_time_ms"),
        (10, 76.0, 0, 2, 30.0, "frames"),
        (10, 76.0, 16, 0, 30.0, "stride"),
        (10, 76.0, 16, 2, 0.0, "target_fps"),
    ],
)
def test_invalid_arguments_are_named(
    n_frames: int, frame_time_ms: float, frames: int, stride: int, target_fps: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        sample_indices(n_frames, frame_time_ms, frames=frames, stride=stride, target_fps=target_fps)


def test_preprocess_real_cine_masks_samples_and_resizes() -> None:
    media = decode_shared("US-PAL-8-10x-echo.dcm")
    found = sector_mask(media)
    clip = preprocess(media, found, frames=16, stride=2, target_fps=30.0, size=112)
    assert clip.pixels.shape == (16, 112, 112, 3) and clip.pixels.dtype == np.uint8
    assert clip.indices.tolist() == [0, 1, 2, 3, 4, 4, 5, 6, 7, 8, 9, 0, 1, 1, 2, 3]
    assert (clip.real, clip.looped) == (11, 5)
    assert clip.fps_used == pytest.approx(1000 / 76) and not clip.timing_assumed
    assert clip.crop == found.bbox
    # Repeated source frames give identical output frames; different ones differ.
    assert np.array_equal(clip.pixels[4], clip.pixels[5])
    assert np.array_equal(clip.pixels[0], clip.pixels[11])
    assert not np.array_equal(clip.pixels[0], clip.pixels[1])
    assert clip.pixels.mean() > 10


def test_preprocess_pads_to_square_without_cutting_the_sector() -> None:
    frames = np.zeros((3, 60, 100, 1), dtype=np.uint8)
    frames[:, 20:40, 10:90] = 200  # a wide 20 x 80 sector
    frames[:, 0:5, 0:5] = 255  # a label outside it
    keep = np.zeros((60, 100), dtype=bool)
    keep[20:40, 10:90] = True
    clip = preprocess(
        media_of(frames, 40.0), SectorMask(mask=keep, source="pixels"), frames=2, stride=1, target_fps=25, size=80
    )
    assert clip.pixels.shape == (2, 80, 80, 1) and clip.is_grayscale
    assert clip.crop == (20, 10, 40, 90)
    image = clip.pixels[0, ..., 0]
    assert (image[30:50, :] == 200).all()  # the full width of the sector survives
    assert not image[:30].any() and not image[50:].any()  # zero padding above and below


def test_preprocess_still_and_bad_masks() -> None:
    media = media_of(np.full((1, 30, 40, 3), 90, dtype=np.uint8), None)
    keep = np.ones((30, 40), dtype=bool)
    clip = preprocess(media, SectorMask(mask=keep, source="none"), frames=1, stride=2, target_fps=30.0, size=16)
    assert clip.pixels.shape == (1, 16, 16, 3) and clip.indices.tolist() == [0] and clip.looped == 0
    with pytest.raises(InvalidMediaError, match="empty"):
        preprocess(media, SectorMask(mask=~keep, source="pixels"), frames=1, stride=2, target_fps=30.0, size=16)
    with pytest.raises(InvalidMediaError, match="10x10 but the frames are 40x30"):
        preprocess(
            media,
            SectorMask(mask=np.ones((10, 10), dtype=bool), source="none"),
            frames=1,
            stride=2,
            target_fps=30.0,
            size=16,
        )
