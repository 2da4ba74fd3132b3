"""The simulated archive is real input: ingestion reads it with its meaning intact, and a seed fixes it."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select

from rag.core.config import load_config
from rag.ingest.deid import Pseudonymizer
from rag.ingest.pipeline import ingest
from rag.simulate.archive import SimulationOptions, read_truth, simulate_archive
from rag.store import Clip, Measurement, Report, StillImage, Study, open_store

SMALL = SimulationOptions(height=160, width=208, doppler_probability=1.0, mp4_probability=1.0)
KEY = "archive-test-key"


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "archive"
    simulate_archive(out, patients=2, seed=11, options=SMALL)
    return out


def test_same_seed_writes_identical_files(archive: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    simulate_archive(again, patients=2, seed=11, options=SMALL, workers=2)
    assert _digest(again) == _digest(archive)
    other = tmp_path / "other"
    simulate_archive(other, patients=1, seed=12, options=SMALL)
    assert set(_digest(other).values()).isdisjoint(v for k, v in _digest(archive).items() if k.endswith(".dcm"))


def test_archive_has_the_required_views_and_kinds(archive: Path) -> None:
    clips, studies = read_truth(archive)
    assert len(studies) >= 2
    for study in studies:
        views = {c["view"] for c in clips if c["study_uid"] == study["study_uid"] and c["kind"] == "cine"}
        required = {"A4C", "A2C", "A3C", "A5C", "Parasternal_Long", "Parasternal_Short", "Subcostal", "SSN"}
        assert required <= views
    kinds = {c["kind"] for c in clips}
    assert kinds == {"cine", "still", "video"}
    assert any(c["grayscale"] == "True" for c in clips) and any(c["colour"] == "True" for c in clips)


def test_ingestion_keeps_view_timing_sections_and_intervals(archive: Path, tmp_path: Path) -> None:
    clips, studies = read_truth(archive)
    cfg = load_config(home=tmp_path / "ws", pseudonym_key=KEY, ingest={"frames": 4, "size": 32})
    report = ingest([archive / "patients"], cfg)
    assert report.counts["skipped"] == 0, [i for i in report.items if i.status == "skipped"]
    assert report.counts["ingested"] == len(clips) + len(studies)  # every file and every report

    pz = Pseudonymizer(KEY.encode())
    store = open_store(cfg.db_url)
    with store.session() as s:
        stored = {c.instance_uid_hash: c for c in s.scalars(select(Clip))}
        stills = {c.instance_uid_hash for c in s.scalars(select(StillImage))}
        for row in clips:
            if row["kind"] == "video":
                continue
            key = pz.uid(row["sop_uid"])
            if row["kind"] == "still":
                assert key in stills
                continue
            clip = stored[key]
            assert clip.fps == pytest.approx(float(row["fps"]), rel=1e-3)
            assert clip.timing_source == "FrameTime"
            assert clip.is_grayscale == (row["grayscale"] == "True")
            if row["label"]:
                assert clip.view_label == row["view"], row
        videos = [c for c in stored.values() if c.source_format == "video"]
        assert len(videos) == sum(r["kind"] == "video" for r in clips)

        by_uid = {pz.uid(st["study_uid"]): st for st in studies}
        stored_studies = {x.uid_hash: x for x in s.scalars(select(Study))}
        assert set(by_uid) == set(stored_studies)
        for uid_hash, truth in by_uid.items():
            st = stored_studies[uid_hash]
            rep = s.scalars(select(Report).where(Report.study_id == st.id)).one()
            names = {x.name for x in rep.sections}
            assert "Left Ventricle" in names  # LVEF is always reported
            for finding, section in (
                ("mr", "Mitral Valve"),
                ("aortic_stenosis", "Aortic Valve"),
                ("ar", "Aortic Valve"),
                ("effusion", "Pericardium"),
                ("tr", "Tricuspid Valve"),
            ):
                if int(truth[finding]) >= 2:  # abnormal findings are always reported, in their section
                    assert section in names, (finding, names)
            lvef = s.scalars(
                select(Measurement).where(Measurement.study_id == st.id, Measurement.name == "lvef")
            ).first()
            if lvef is not None:
                assert abs(lvef.value - float(truth["lvef"])) <= 5.0
            if truth["prior_study_uid"]:
                prior_truth = next(x for x in studies if x["study_uid"] == truth["prior_study_uid"])
                prior = stored_studies[pz.uid(prior_truth["study_uid"])]
                assert st.study_date is not None and prior.study_date is not None
                stored_days = (st.study_date - prior.study_date).days
                true_days = (dt.date.fromisoformat(truth["date"]) - dt.date.fromisoformat(prior_truth["date"])).days
                assert stored_days == true_days
    store.close()
