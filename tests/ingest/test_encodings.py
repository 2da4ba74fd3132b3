"""Every encoding an echo cart exports decodes to the right colours, grey stays grey, timing is read."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pydicom
import pytest

from rag.ingest.dicom_decode import decode_dicom
from rag.simulate.dicom_writer import StudyInfo, write_us_dicom

STUDY = StudyInfo("TEST^PATIENT", "ID1", "1.2.826.0.1.3680043.10.1", dt.date(2024, 1, 2))
PATCHES = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200), "grey": (128, 128, 128)}


def _colour_frames(n: int = 6) -> np.ndarray:
    """(n, 64, 96, 3) uint8: four flat colour patches of 32x48 (flat, so JPEG keeps them close)."""
    f = np.zeros((n, 64, 96, 3), np.uint8)
    for i, rgb in enumerate(PATCHES.values()):
        r, c = divmod(i, 2)
        f[:, r * 32 : (r + 1) * 32, c * 48 : (c + 1) * 48] = rgb
    return f


def _decode(path: Path) -> np.ndarray:
    media = decode_dicom(pydicom.dcmread(path), max_frames=100, max_pixels_per_frame=10**6)
    assert media.frame_time_ms == pytest.approx(40.0) and media.timing_source == "FrameTime"
    return media.frames


@pytest.mark.parametrize("encoding", ["jpeg", "rle", "raw"])
def test_colour_cines_decode_to_their_colours(encoding: str, tmp_path: Path) -> None:
    path = tmp_path / "c.dcm"
    write_us_dicom(
        path,
        _colour_frames(),
        study=STUDY,
        series_uid="1.2.3.1",
        sop_uid="1.2.3.1.1",
        frame_time_ms=40.0,
        encoding=encoding,
    )  # type: ignore[arg-type]
    if encoding == "jpeg":
        assert pydicom.dcmread(path).PhotometricInterpretation == "YBR_FULL_422"
    frames = _decode(path)
    assert frames.shape == (6, 64, 96, 3)
    tol = 12 if encoding == "jpeg" else 0
    for i, rgb in enumerate(PATCHES.values()):
        r, c = divmod(i, 2)
        centre = frames[:, r * 32 + 8 : r * 32 + 24, c * 48 + 12 : c * 48 + 36].reshape(-1, 3).mean(axis=0)
        assert np.abs(centre - np.array(rgb)).max() <= tol, (encoding, list(PATCHES)[i], centre)


@pytest.mark.parametrize("encoding", ["jpeg", "rle", "raw"])
def test_grayscale_cines_stay_single_channel(encoding: str, tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(0, 255, 96, dtype=np.uint8), (5, 64, 1))
    path = tmp_path / "g.dcm"
    write_us_dicom(
        path, ramp, study=STUDY, series_uid="1.2.3.2", sop_uid="1.2.3.2.1", frame_time_ms=40.0, encoding=encoding
    )  # type: ignore[arg-type]
    frames = _decode(path)
    assert frames.shape == (5, 64, 96, 1)
    assert np.abs(frames[..., 0].astype(int) - ramp).max() <= (6 if encoding == "jpeg" else 0)


def test_monochrome1_is_inverted(tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(0, 255, 96, dtype=np.uint8), (3, 64, 1))
    path = tmp_path / "m1.dcm"
    write_us_dicom(
        path, ramp, study=STUDY, series_uid="1.2.3.3", sop_uid="1.2.3.3.1", frame_time_ms=40.0, encoding="raw"
    )
    ds = pydicom.dcmread(path)
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(path)
    frames = _decode(path)
    assert np.array_equal(frames[..., 0], 255 - ramp)


def test_fast_jpeg_path_agrees_with_the_reference_decoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rag.ingest import dicom_decode

    rng = np.random.default_rng(3)
    frames = np.clip(_colour_frames(4).astype(int) + rng.integers(-20, 20, (4, 64, 96, 3)), 0, 255).astype(np.uint8)
    path = tmp_path / "j.dcm"
    write_us_dicom(path, frames, study=STUDY, series_uid="1.2.3.4", sop_uid="1.2.3.4.1", frame_time_ms=40.0)
    fast = _decode(path).astype(int)
    monkeypatch.setattr(dicom_decode, "_decode_jpeg_baseline", lambda *a: None)
    reference = _decode(path).astype(int)
    assert np.abs(fast - reference).mean() < 1.0 and np.abs(fast - reference).max() <= 24
