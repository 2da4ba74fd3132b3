"""End-to-end ingestion on the real DICOM files, on SQLite and (integration) PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from sqlalchemy import select

from rag.core.clipfile import read_clip
from rag.core.config import RagConfig, load_config
from rag.ingest import pipeline
from rag.ingest.pipeline import ingest
from rag.store import Clip, Measurement, Patient, Report, StillImage, Study, open_store

REPORT = """StudyInstanceUID: {uid}
Echocardiogram report for DOE, JANE (MRN12345), 1994-01-30.
Comparison: the prior study showed an LVEF of 35%.
Left Ventricle: Normal left ventricular size. LVEF is estimated at 55%.
Mitral Valve: Mild mitral regurgitation.
Aortic Valve: Trace aortic insufficiency.
Pericardium: No pericardial effusion.
"""


def _cfg(db_url: str) -> RagConfig:
    return load_config(database_url=db_url, ingest={"frames": 8, "size": 64})


def make_sample(root: Path, dicom_dir: Path) -> Path:
    """A small archive of real files: the echo cine renamed to a fake patient, three stills, a report."""
    src = root / "in"
    (src / "echo").mkdir(parents=True)
    (src / "stills").mkdir()
    ds = pydicom.dcmread(dicom_dir / "US-PAL-8-10x-echo.dcm")
    ds.PatientName = "DOE^JANE"
    ds.PatientID = "MRN12345"
    ds.PatientBirthDate = "19500101"
    ds.InstitutionName = "General Hospital of Springfield"
    ds.save_as(src / "echo" / "IM0001")  # no extension: found by its DICM preamble
    for name in ("US1_UNCR.dcm", "US1_J2KR.dcm", "gdcm-US-ALOKA-16.dcm"):
        shutil.copy(dicom_dir / name, src / "stills" / name)
    (src / "echo" / "report.txt").write_text(REPORT.format(uid=ds.StudyInstanceUID))
    return src


def _rows(cfg: RagConfig) -> dict[str, list[tuple[Any, ...]]]:
    """Store content without surrogate keys or timestamps (to compare two runs)."""
    store = open_store(cfg.db_url)
    with store.session() as s:
        out = {
            "patients": sorted((p.pseudonym,) for p in s.scalars(select(Patient))),
            "studies": sorted((x.uid_hash, str(x.study_date), x.modality) for x in s.scalars(select(Study))),
            "clips": sorted((c.instance_uid_hash, c.content_sha256, c.path) for c in s.scalars(select(Clip))),
            "images": sorted((c.instance_uid_hash, c.content_sha256, c.path) for c in s.scalars(select(StillImage))),
            "reports": sorted((r.content_sha256, len(r.sections)) for r in s.scalars(select(Report))),
            "measurements": sorted((m.name, m.value) for m in s.scalars(select(Measurement))),
        }
    store.close()
    return out


def _media_files(cfg: RagConfig) -> list[str]:
    return sorted(str(p.relative_to(cfg.media_dir)) for p in cfg.media_dir.rglob("*") if p.is_file())


def test_ingest_real_files(db_url: str, dicom_dir: Path, tmp_path: Path) -> None:
    cfg = _cfg(db_url)
    report = ingest([make_sample(tmp_path, dicom_dir)], cfg)
    assert report.counts == {"ingested": 5, "skipped": 0, "duplicate": 0}, report.to_json()

    store = open_store(cfg.db_url)
    with store.session() as s:
        clip = s.scalars(select(Clip)).one()
        assert (clip.source_frames, clip.source_height, clip.source_width) == (10, 430, 600)
        assert clip.timing_source == "FrameTime" and clip.fps == pytest.approx(1000 / 76)
        assert clip.view_label == "Doppler_Parasternal_Long" and clip.view_source == "SeriesDescription"
        assert clip.photometric.startswith("PALETTE") and not clip.is_grayscale
        assert clip.frames == 8 and clip.size == 64
        images = s.scalars(select(StillImage)).all()
        assert len(images) == 3
        # the three stills come from two studies (US1 pair shares one), the cine from a third
        assert len(s.scalars(select(Study)).all()) == 3
        rep = s.scalars(select(Report)).one()
        assert rep.study_id == clip.series.study_id  # attached to the cine's study via its UID line
        names = [x.name for x in rep.sections]
        assert {"Left Ventricle", "Mitral Valve", "Aortic Valve", "Pericardium"} <= set(names)
        assert "DOE" not in rep.text and "JANE" not in rep.text and "MRN12345" not in rep.text
        assert "1994-01-30" not in rep.text and "StudyInstanceUID" not in rep.text
        lvef = s.scalars(select(Measurement).where(Measurement.name == "lvef")).one()
        assert (lvef.value, lvef.unit) == (55.0, "%")
        clip_path = cfg.media_dir / clip.path
    store.close()

    pixels, meta = read_clip(clip_path)
    assert pixels.shape == (8, 64, 64, 3) and pixels.dtype == np.uint8
    assert meta["timing_source"] == "FrameTime"
    # 8 frames at stride 2 over 30 fps span 0.47 s; the 10 x 76 ms cine lasts 0.76 s: no looping
    assert meta["looped_frames"] == 0
    assert meta["frame_indices"] == [round(k * 2 / 30 / 0.076) for k in range(8)]


def test_rerun_adds_nothing(dicom_dir: Path, tmp_path: Path, workspace: Path) -> None:
    cfg = _cfg(f"sqlite:///{workspace / 'rag.sqlite3'}")
    sample = make_sample(tmp_path, dicom_dir)
    ingest([sample], cfg)
    before, files = _rows(cfg), _media_files(cfg)
    again = ingest([sample], cfg)
    assert again.counts == {"ingested": 0, "skipped": 0, "duplicate": 5}
    assert _rows(cfg) == before and _media_files(cfg) == files


def test_same_uid_other_encoding_is_duplicate_other_pixels_is_refused(
    dicom_dir: Path, tmp_path: Path, workspace: Path
) -> None:
    cfg = _cfg(f"sqlite:///{workspace / 'rag.sqlite3'}")
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for d in (a, b, c):
        d.mkdir()
    shutil.copy(dicom_dir / "US1_UNCR.dcm", a / "x.dcm")
    uid = pydicom.dcmread(a / "x.dcm").SOPInstanceUID
    j2k = pydicom.dcmread(dicom_dir / "US1_J2KR.dcm")  # same image, JPEG 2000 lossless
    j2k.SOPInstanceUID = uid
    j2k.save_as(b / "y.dcm")
    changed = pydicom.dcmread(dicom_dir / "US1_UNCR.dcm")
    arr = bytearray(changed.PixelData)
    mid = len(arr) // 2
    arr[mid : mid + 300] = bytes(x ^ 0xFF for x in arr[mid : mid + 300])
    changed.PixelData = bytes(arr)
    changed.save_as(c / "z.dcm")

    assert ingest([a], cfg).counts["ingested"] == 1
    r = ingest([b, c], cfg)
    by_path = {Path(i.path).name: i for i in r.items}
    assert by_path["y.dcm"].status == "duplicate"
    assert by_path["z.dcm"].status == "skipped" and "different pixel data" in (by_path["z.dcm"].reason or "")


def test_interrupt_then_rerun_equals_clean_run(
    dicom_dir: Path, tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sample = make_sample(tmp_path, dicom_dir)
    clean = _cfg(f"sqlite:///{tmp_path / 'clean.sqlite3'}")
    clean = clean.model_copy(update={"home": tmp_path / "clean"})
    ingest([sample], clean)

    cfg = _cfg(f"sqlite:///{workspace / 'rag.sqlite3'}")
    real_store_media = pipeline.store_media
    calls = {"n": 0}

    def crash_on_third(*args: Any, **kwargs: Any) -> str:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_store_media(*args, **kwargs)

    monkeypatch.setattr(pipeline, "store_media", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        ingest([sample], cfg)
    monkeypatch.setattr(pipeline, "store_media", real_store_media)
    # leftovers of a crash between the file write and the commit
    (cfg.media_dir / "clips" / "zz").mkdir(parents=True, exist_ok=True)
    (cfg.media_dir / "clips" / "zz" / "orphan.npz").write_bytes(b"partial")
    (cfg.media_dir / "clips" / "zz" / ".x.npz.abc.tmp").write_bytes(b"partial")

    again = ingest([sample], cfg)
    assert again.swept_orphans == 2
    assert _rows(cfg) == _rows(clean)
    assert _media_files(cfg) == _media_files(clean)
    reports = sorted(cfg.reports_dir.glob("ingest-*.json"))
    assert len(reports) == 2 and json.loads(reports[0].read_text())["interrupted"] is True


def test_same_key_gives_same_pseudonyms_and_dates_keep_intervals(dicom_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    first = pydicom.dcmread(dicom_dir / "US1_UNCR.dcm")
    later = pydicom.dcmread(dicom_dir / "US1_UNCR.dcm")
    later.StudyInstanceUID = first.StudyInstanceUID + ".2"
    later.SeriesInstanceUID = first.SeriesInstanceUID + ".2"
    later.SOPInstanceUID = first.SOPInstanceUID + ".2"
    later.StudyDate = "20050108"  # 135 days after 20040826
    first.save_as(src / "first.dcm")
    later.save_as(src / "later.dcm")

    results = []
    for run in ("one", "two"):
        cfg = load_config(home=tmp_path / run, pseudonym_key="fixed-key", ingest={"frames": 2, "size": 32})
        ingest([src], cfg)
        results.append(_rows(cfg))
        store = open_store(cfg.db_url)
        with store.session() as s:
            dates = sorted(x.study_date for x in s.scalars(select(Study)) if x.study_date)
            assert (dates[1] - dates[0]) == dt.timedelta(days=135)
            assert dates[0] != dt.date(2004, 8, 26)  # shifted
            assert len(s.scalars(select(Patient)).all()) == 1
        store.close()
    assert results[0]["patients"] == results[1]["patients"]
    assert results[0]["studies"] == results[1]["studies"]

    other = load_config(home=tmp_path / "other", pseudonym_key="another-key", ingest={"frames": 2, "size": 32})
    ingest([src], other)
    assert _rows(other)["patients"] != results[0]["patients"]


def test_worker_processes_give_the_same_store_as_one_process(dicom_dir: Path, tmp_path: Path) -> None:
    sample = make_sample(tmp_path, dicom_dir)
    (sample / "bad.dcm").write_bytes(b"garbage")
    results = []
    for workers in (1, 2):
        cfg = load_config(
            home=tmp_path / f"w{workers}", pseudonym_key="k" * 12, ingest={"frames": 4, "size": 32, "workers": workers}
        )
        report = ingest([sample], cfg)
        assert report.counts == {"ingested": 5, "skipped": 1, "duplicate": 0}
        results.append((_rows(cfg), _media_files(cfg)))
    assert results[0] == results[1]
