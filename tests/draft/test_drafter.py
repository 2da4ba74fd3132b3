"""Drafting stored studies and DICOM folders end to end on a small ingested, embedded archive."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from rag.core.config import load_config
from rag.draft import Drafter, ExtractiveGenerator, Report
from rag.generate.context import grade_agreement
from rag.generate.extractive import choose_hit
from rag.generate.report import CaseEvidence, MeasurementEvidence
from rag.generate.text import BLANK
from rag.simulate.archive import SimulationOptions, simulate_archive
from rag.store import Report as StoredReport
from rag.store import ReportSection, Study
from tests.conftest import KEY, EmbeddedArchive

_NUMBER_UNIT = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*(%|mmHg|cm|mm|m/s)(?!\w)")


@pytest.fixture(scope="module")
def drafter(embedded_archive: EmbeddedArchive) -> Drafter:
    return Drafter(embedded_archive.config, kb=None)


def _studies(drafter: Drafter) -> list[int]:
    return sorted(drafter.retriever.studies.study_ids.tolist())


def test_a_stored_study_gets_sections_with_case_provenance(drafter: Drafter) -> None:
    study_id = _studies(drafter)[0]
    report = drafter.draft(study_id)
    assert report.study_id == study_id
    assert report.sections, report
    own_patient = drafter.retriever.catalog.study(study_id).patient_id
    with drafter.store.session() as s:
        for section in report.sections:
            assert section.sentences
            for sentence in section.sentences:
                cases = [e for e in sentence.evidence if isinstance(e, CaseEvidence)]
                assert len(cases) == 1, sentence
                case = cases[0]
                stored = s.get(ReportSection, case.report_section_id)
                assert stored is not None and stored.name == section.name
                # the sentence comes from that neighbour's section text (numbers aside)
                words = re.sub(r"[\d.]+|___", " ", sentence.text).split()
                assert all(w in stored.text for w in words if len(w) > 3), (sentence.text, stored.text)
                neighbour = s.get(Study, case.study_id)
                assert neighbour is not None and neighbour.patient_id != own_patient
    assert report.provenance.generator == "extractive"
    assert report.provenance.encoder.startswith("echo-video-tiny@")
    assert {n.study_id for n in report.neighbours} == {
        e.study_id for s in report.sections for x in s.sentences for e in x.evidence if isinstance(e, CaseEvidence)
    }


def test_numbers_come_from_the_vote_or_are_blanked(drafter: Drafter) -> None:
    for study_id in _studies(drafter):
        report = drafter.draft(study_id)
        lvef = report.measurement("lvef")
        assert lvef is not None and lvef.value is not None and lvef.neighbours
        stored = drafter.retriever.catalog.measurements
        values = [stored[n.study_id]["lvef"] for n in lvef.neighbours]
        assert min(values) - 1e-6 <= lvef.value <= max(values) + 1e-6
        voted = {m.name: m for m in report.measurements if m.value is not None}
        for section in report.sections:
            for sentence in section.sentences:
                filled = [e for e in sentence.evidence if isinstance(e, MeasurementEvidence)]
                allowed = set()
                for e in filled:
                    assert e.name in {
                        "lvef",
                        "lvidd",
                        "lvids",
                        "ivsd",
                        "la_diameter",
                        "tapse",
                        "pasp",
                        "rvsp",
                        "aortic_root",
                        "ivc_diameter",
                    }
                    allowed.add(e.value)
                for number, _unit in _NUMBER_UNIT.findall(sentence.text):
                    assert any(abs(float(number) - v) <= 0.51 for v in allowed), (sentence.text, filled)
        if "LVEF" in report.text:
            assert f"{voted['lvef'].value:.0f}%" in report.text


def test_the_chosen_text_agrees_with_the_vote_when_a_candidate_does(drafter: Drafter) -> None:
    study_id = _studies(drafter)[1]
    context = drafter.context(study_id)
    for section, hits in context.retrieval.sections.items():
        if not hits:
            continue
        wanted = context.voted_grades(section)
        hit, agreeing, total = choose_hit(context, section, hits)
        scores = [grade_agreement(wanted, context.hit_grades[h.report_section_id]) for h in hits]
        best = max(scores)
        assert agreeing == best and total == len(wanted)
        # the earliest-ranked hit among the best agreeing ones
        first = hits[scores.index(best)]
        assert hit.report_section_id == first.report_section_id


def test_report_round_trips_through_json(drafter: Drafter) -> None:
    report = drafter.draft(_studies(drafter)[0])
    again = Report.from_json(report.to_json())
    assert again == report
    assert BLANK not in again.to_json() or again.warnings


def test_unknown_study_and_missing_checkpoint_are_clear(
    drafter: Drafter, embedded_archive: EmbeddedArchive, tmp_path: Path
) -> None:
    from rag.core.errors import RagError

    with pytest.raises(RagError, match="999999"):
        drafter.draft(999_999)
    with pytest.raises(RagError, match="neither a stored study ID nor an existing folder"):
        drafter.draft(tmp_path / "nope")
    with pytest.raises(RagError, match="no encoder checkpoint"):
        Drafter(embedded_archive.config, checkpoint=tmp_path / "missing.pt")


def test_a_folder_of_dicoms_is_ingested_embedded_and_drafted(embedded_archive: EmbeddedArchive, tmp_path: Path) -> None:
    home = tmp_path / "ws"
    shutil.copytree(embedded_archive.config.home, home)
    cfg = load_config(home=home, pseudonym_key=KEY, ingest={"frames": 16, "size": 64})
    new = tmp_path / "new"
    simulate_archive(new, patients=1, seed=99, options=SimulationOptions(height=64, width=80, mp4_probability=0.0))
    study_dir = sorted(p for p in (new / "patients").glob("*/*") if p.is_dir())[0]
    drafter = Drafter(cfg, kb=None)
    before = len(drafter.retriever.studies)
    report = drafter.draft(study_dir)
    assert len(drafter.retriever.studies) == before + 1
    assert report.clips and all(c.view for c in report.clips)
    assert report.sections
    # drafting the same folder again finds the stored study instead of ingesting it twice
    again = drafter.draft(study_dir)
    assert again.study_id == report.study_id
    with drafter.store.session() as s:
        assert s.query(StoredReport).filter(StoredReport.study_id == report.study_id).count() <= 1


def test_generator_without_vote_agreement_takes_the_top_hit(drafter: Drafter) -> None:
    context = drafter.context(_studies(drafter)[2])
    report = ExtractiveGenerator(agree_with_votes=False).generate(context)
    for section in report.sections:
        top = context.retrieval.sections[section.name][0]
        assert all(
            e.report_section_id == top.report_section_id
            for x in section.sentences
            for e in x.evidence
            if isinstance(e, CaseEvidence)
        )


def test_a_folder_of_broken_files_is_refused_and_stores_nothing(drafter: Drafter, tmp_path: Path) -> None:
    from rag.core.errors import RagError
    from rag.store import Clip

    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "IM0001.dcm").write_bytes(b"DICM" + b"\x00" * 64)  # not a DICOM file
    (folder / "cine.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    with drafter.store.session() as s:
        before = (s.query(Study).count(), s.query(Clip).count())
    with pytest.raises(RagError, match=r"nothing in .*broken.* could be ingested") as raised:
        drafter.draft(folder)
    assert "IM0001.dcm" in str(raised.value) and "cine.mp4" in str(raised.value)
    with drafter.store.session() as s:
        assert (s.query(Study).count(), s.query(Clip).count()) == before


def test_a_damaged_report_file_is_a_clear_error(drafter: Drafter) -> None:
    from pydantic import ValidationError

    text = drafter.draft(_studies(drafter)[0]).to_json()
    with pytest.raises(ValidationError, match="study_id"):
        Report.from_json(text.replace('"study_id"', '"study"', 1))
    with pytest.raises(ValidationError, match="Invalid JSON"):
        Report.from_json(text[: len(text) // 2])
