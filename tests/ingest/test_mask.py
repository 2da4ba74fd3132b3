"""Sector masking: declared regions, pixel heuristic on cines and stills, and blanking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from rag.ingest.dicom_decode import decode_dicom
from rag.ingest.mask import SectorMask, apply_mask, sector_mask
from rag.ingest.media import DecodedMedia, UltrasoundRegion

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LIMITS: dict[str, int] = {"max_frames": 1024, "max_pixels_per_frame": 2048 * 2048}


def decode_shared(name: str) -> DecodedMedia:
    path = SHARED / "dicom" / name
    if not path.exists():
        pytest.skip(f"real test data not available: {path} (needs ../shared/data beside the repository)")
    return decode_dicom(pydicom.dcmread(path), **LIMITS)


def cine(frames: np.ndarray, regions: tuple[UltrasoundRegion, ...] = ()) -> DecodedMedia:
    return DecodedMedia(
        frames=frames,
        frame_time_ms=33.0 if frames.shape[0] > 1 else None,
        timing_source="FrameTime" if frames.shape[0] > 1 else "none",
        regions=regions,
        photometric="RGB",
        source_frames=frames.shape[0],
        kind="cine" if frames.shape[0] > 1 else "still",
    )


def synthetic_echo(n_frames: int = 24) -> tuple[DecodedMedia, np.ndarray]:
    """A 160x200 cine: a speckled fan with a dark static cavity, static white text top left and a
    green ECG trace scrolling under the fan. Returns the media and the (H, W) bool fan."""
    rng = np.random.default_rng(0)
    height, width = 160, 200
    y, x = np.mgrid[0:height, 0:width]
    fan = (np.hypot(y - 8, x - 100) < 125) & (np.abs(np.degrees(np.arctan2(x - 100, y - 8))) < 40)
    cavity = np.hypot(y - 70, x - 100) < 18
    columns = np.arange(20, 180)
    frames = np.zeros((n_frames, height, width, 3), dtype=np.uint8)
    for t in range(n_frames):
        speckle = rng.integers(40, 230, (height, width), dtype=np.uint8)
        frames[t] = np.where(fan & ~cavity, speckle, 0)[..., np.newaxis]
        for k in range(6):
            frames[t, 6:16, 6 + 10 * k : 12 + 10 * k] = 255
        # QRS spikes 16 px tall, every 50 px, scrolling 4 px per frame.
        tops = np.rint(150 - 16 * np.exp(-(((columns + 4 * t) % 50 - 25) ** 2) / 6.0)).astype(int)
        for column, top in zip(columns, tops, strict=True):
            frames[t, top:152, column] = (40, 200, 60)
    return cine(frames), fan


def test_echo_cine_mask_blanks_ecg_text_and_colour_bar_and_keeps_the_sector() -> None:
    media = decode_shared("US-PAL-8-10x-echo.dcm")
    found = sector_mask(media)
    assert found.source == "pixels"
    assert found.mask.shape == (430, 600) and found.mask.dtype == np.bool_
    assert 0.15 < found.coverage < 0.45

    masked = apply_mask(media.frames, found)
    ecg = (slice(None), slice(355, 400), slice(40, 350))  # green trace under the sector
    assert np.count_nonzero(media.frames[ecg].max(axis=-1) > 60) > 500
    assert not masked[ecg].any()
    assert not masked[:, 0:110, 0:120].any()  # acquisition text, top left
    assert not masked[:, 150:250, 0:100].any()  # gain / depth text, left
    assert not masked[:, 15:170, 540:600].any()  # colour scale, top right
    # The colour-flow part of the sector and the tissue around it survive.
    flow = (slice(None), slice(130, 280), slice(260, 370))
    assert found.mask[flow[1:]].mean() > 0.97
    assert np.count_nonzero(masked[flow].max(axis=-1)) > 0.8 * np.count_nonzero(media.frames[flow].max(axis=-1))
    assert found.mask[40:70, 280:320].mean() > 0.9  # the near field under the apex of the fan
    core = (slice(None), slice(60, 330), slice(180, 430))  # the fan between its edges
    kept = np.count_nonzero(masked[core].max(axis=-1) > 20) / np.count_nonzero(media.frames[core].max(axis=-1) > 20)
    assert kept > 0.9  # all but the graphics drawn over the sector
    # The colour-box outline is drawn over the sector, identical in every frame: it is blanked too.
    frames = media.frames.astype(int)
    static = (frames.max(axis=0) == frames.min(axis=0)).all(axis=-1)
    cyan = (frames[0, ..., 2] > 150) & (frames[0, ..., 1] > 150) & (frames[0, ..., 0] < 120)
    outline = static & cyan
    assert np.count_nonzero(outline & found.mask) == 0 and np.count_nonzero(outline[100:310, 220:420]) > 300
    assert not masked[:, outline].any()


def test_declared_image_regions_bound_the_mask_and_drop_the_gray_bar() -> None:
    media = decode_shared("gdcm-US-ALOKA-16.dcm")
    found = sector_mask(media)
    assert found.source == "regions"
    boxes = np.zeros((480, 640), dtype=bool)
    boxes[24:416, 32:640] = True
    assert not found.mask[~boxes].any()  # banner text above, measurements below
    assert not found.mask[40:104, 32:64].any()  # the gray-bar region declared inside the first box
    assert found.mask[boxes].mean() > 0.6
    assert found.mask[150:380, 60:290].mean() > 0.98 and found.mask[200:400, 350:630].mean() > 0.98


def test_still_without_regions_uses_intensity_and_excludes_text() -> None:
    media = decode_shared("US1_UNCR.dcm")
    found = sector_mask(media)
    assert found.source == "pixels"
    assert not found.mask[:100].any()  # header text
    assert not found.mask[350:].any()  # "LYMPH NODE", scale bar, output indices
    assert found.mask[120:330, 40:600].mean() > 0.97


def test_scrolling_ecg_and_static_text_stay_outside_the_sector() -> None:
    media, fan = synthetic_echo()
    found = sector_mask(media)
    assert found.source == "pixels"
    assert not found.mask[134:].any()  # the ECG strip (the fan ends at row 133)
    assert not found.mask[:20, :70].any()  # the text
    assert found.mask[fan].mean() > 0.97
    assert found.mask[~fan].mean() < 0.03
    assert found.mask[70, 100]  # the static dark cavity inside the hull is kept


def test_region_rectangle_excludes_an_ecg_strip_outside_it() -> None:
    media, fan = synthetic_echo(8)
    regions = (
        UltrasoundRegion(x0=10, y0=0, x1=190, y1=133, spatial_format=1, data_type=1, flags=0),
        UltrasoundRegion(x0=10, y0=135, x1=190, y1=159, spatial_format=4, data_type=0x0A, flags=0),
    )
    found = sector_mask(cine(media.frames, regions))
    assert found.source == "regions"
    assert not found.mask[134:].any()
    assert found.mask[fan].mean() > 0.95


def test_gray_frames_and_blank_frames() -> None:
    media, fan = synthetic_echo(6)
    gray = cine(np.ascontiguousarray(media.frames[..., :1]))
    found = sector_mask(gray)
    assert found.source == "pixels" and found.mask[fan].mean() > 0.95
    assert apply_mask(gray.frames, found).shape == gray.frames.shape

    blank = sector_mask(cine(np.zeros((3, 40, 50, 1), dtype=np.uint8)))
    assert blank.source == "none" and blank.mask.all()


def test_apply_mask_zeroes_outside_only() -> None:
    frames = np.full((2, 4, 5, 3), 7, dtype=np.uint8)
    keep = np.zeros((4, 5), dtype=bool)
    keep[1:3, 2:4] = True
    out = apply_mask(frames, keep)
    assert out.dtype == np.uint8 and out.shape == frames.shape
    assert (out[:, 1:3, 2:4] == 7).all() and out.sum() == 7 * 2 * 4 * 3
    assert frames.min() == 7  # input untouched
    with pytest.raises(ValueError, match="does not fit"):
        apply_mask(frames, np.ones((5, 4), dtype=bool))


def test_sector_mask_reports_its_box() -> None:
    keep = np.zeros((6, 8), dtype=bool)
    keep[2:5, 1:7] = True
    found = SectorMask(mask=keep, source="pixels")
    assert found.bbox == (2, 1, 5, 7)
    assert found.coverage == pytest.approx(18 / 48)
    assert SectorMask(mask=np.zeros((3, 3), dtype=bool), source="none").bbox is None
    with pytest.raises(ValueError, match="bool"):
        SectorMask(mask=np.ones((3, 3), dtype=np.uint8), source="none")
