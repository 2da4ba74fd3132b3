"""Bad input: clear one-line reasons, the batch goes on, nothing half-written is left."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import UID
from sqlalchemy import func, select

from rag.core.clipfile import read_clip
from rag.core.config import RagConfig, load_config
from rag.ingest.outcome import IngestReport
from rag.ingest.pipeline import ingest
from rag.store import Clip, Patient, Report, StillImage, open_store


def _cfg(workspace: Path) -> RagConfig:
    return load_config(ingest={"frames": 4, "size": 32})


def _assert_consistent(cfg: RagConfig, report: IngestReport) -> None:
    """Every ingested media item has one row and one readable file; no other file or temp remains."""
    store = open_store(cfg.db_url)
    with store.session() as s:
        paths = list(s.scalars(select(Clip.path))) + list(s.scalars(select(StillImage.path)))
    store.close()
    media = [x for x in report.items if x.status == "ingested" and not (x.record or "").startswith("report")]
    assert len(paths) == len(media)
    on_disk = sorted(str(p.relative_to(cfg.media_dir)) for p in cfg.media_dir.rglob("*") if p.is_file())
    assert on_disk == sorted(paths), "files without rows, or temporary files, were left behind"
    for p in paths:
        read_clip(cfg.media_dir / p)
    for item in report.items:
        assert item.status in {"ingested", "skipped", "duplicate"}
        if item.status == "skipped":
            assert item.reason and "\n" not in item.reason


def test_each_bad_input_has_its_reason(dicom_dir: Path, workspace: Path, tmp_path: Path) -> None:
    src = tmp_path / "bad"
    src.mkdir()
    shutil.copy(dicom_dir / "US1_UNCR.dcm", src / "good.dcm")
    raw = (dicom_dir / "US-PAL-8-10x-echo.dcm").read_bytes()
    (src / "truncated.dcm").write_bytes(raw[: len(raw) // 3])
    (src / "notdicom.dcm").write_bytes(b"hello, this is not a DICOM file\n" * 10)
    ds = pydicom.dcmread(dicom_dir / "US1_UNCR.dcm")
    ds.Rows = ds.Columns = 60000
    ds.SOPInstanceUID = "1.2.3.4.1"
    ds.save_as(src / "huge.dcm")
    ds = pydicom.dcmread(dicom_dir / "US-PAL-8-10x-echo.dcm")
    ds.NumberOfFrames = 0
    ds.SOPInstanceUID = "1.2.3.4.2"
    ds.save_as(src / "zeroframes.dcm")
    ds = pydicom.dcmread(dicom_dir / "US1_UNCR.dcm")
    ds.file_meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.4.100")  # MPEG2: not decodable here
    ds.PixelData = encapsulate([bytes(ds.PixelData)])
    ds["PixelData"].VR = "OB"
    ds.SOPInstanceUID = "1.2.3.4.3"
    ds.save_as(src / "mpeg2.dcm", enforce_file_format=True)
    (src / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(50))
    (src / "notes.xyz").write_text("what is this")
    (src / "orphan-report.txt").write_text("Left Ventricle: normal size.")

    cfg = _cfg(workspace)
    report = ingest([src, tmp_path / "does-not-exist"], cfg)
    reasons = {Path(i.path).name: (i.status, i.reason or "") for i in report.items}
    assert reasons["good.dcm"][0] == "ingested"
    expect = {
        "truncated.dcm": ("truncat", "read", "decod"),
        "notdicom.dcm": ("not a dicom",),
        "huge.dcm": ("60000",),
        "zeroframes.dcm": ("frame",),
        "mpeg2.dcm": ("1.2.840.10008.1.2.4.100", "mpeg"),
        "broken.mp4": ("video", "decod", "read", "frame"),
        "broken.png": ("image", "decod", "read", "png"),
        "notes.xyz": ("not a dicom, video, image or report",),
        "orphan-report.txt": ("which study",),
        "does-not-exist": ("does not exist",),
    }
    for name, words in expect.items():
        status, reason = reasons[name]
        assert status == "skipped", (name, status, reason)
        assert any(w in reason.lower() for w in words), (name, reason)
    assert report.counts == {"ingested": 1, "skipped": len(expect), "duplicate": 0}
    _assert_consistent(cfg, report)


def _variants(dicom_dir: Path, out: Path, n: int, seed: int = 7) -> list[Path]:
    """Corrupted copies of the real files: truncations, flipped bytes, and broken header values."""
    rng = random.Random(seed)
    sources = sorted(dicom_dir.glob("*.dcm"))
    made: list[Path] = []
    header_edits = [
        ("Rows", 0),
        ("Columns", 65535),
        ("BitsAllocated", 7),
        ("SamplesPerPixel", 4),
        ("PhotometricInterpretation", "BOGUS"),
        ("NumberOfFrames", 10**7),
        ("FrameTime", "-5"),
        ("PlanarConfiguration", 3),
        ("BitsStored", 40),
        ("HighBit", 99),
    ]
    for i in range(n):
        src = sources[i % len(sources)]
        data = bytearray(src.read_bytes())
        dest = out / f"v{i:03d}_{src.stem}.dcm"
        mode = i % 3
        if mode == 0:
            dest.write_bytes(bytes(data[: rng.randrange(132, len(data))]))
        elif mode == 1:
            for _ in range(rng.randrange(1, 40)):
                pos = rng.randrange(132, len(data))
                data[pos] = rng.randrange(256)
            dest.write_bytes(bytes(data))
        else:
            ds = pydicom.dcmread(src)
            key, value = header_edits[(i // 3) % len(header_edits)]
            setattr(ds, key, value)
            ds.SOPInstanceUID = f"1.2.826.0.1.3680043.10.999.{i}"
            ds.save_as(dest)
        made.append(dest)
    return made


@pytest.mark.slow
def test_fuzzed_real_files_never_crash_or_leave_partial_writes(
    dicom_dir: Path, workspace: Path, tmp_path: Path
) -> None:
    src = tmp_path / "fuzz"
    src.mkdir()
    variants = _variants(dicom_dir, src, 60)
    cfg = _cfg(workspace)
    report = ingest([src], cfg)
    assert len(report.items) == len(variants)
    _assert_consistent(cfg, report)
    store = open_store(cfg.db_url)
    with store.session() as s:
        # no patient or study rows without something stored under them
        assert s.scalar(select(func.count()).select_from(Report)) == 0
        n_patients = s.scalar(select(func.count()).select_from(Patient))
    store.close()
    assert (n_patients or 0) <= report.counts["ingested"]
    # and a second run over the same files settles into the same state
    files = sorted(p for p in cfg.media_dir.rglob("*") if p.is_file())
    again = ingest([src], cfg)
    assert again.counts["ingested"] == 0
    assert again.counts["duplicate"] == report.counts["ingested"]
    assert sorted(p for p in cfg.media_dir.rglob("*") if p.is_file()) == files
