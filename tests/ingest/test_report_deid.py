"""Report text is de-identified whichever run it arrives in: labelled fields, then the patient's tokens by hash."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from sqlalchemy import select

from rag.core.config import RagConfig, load_config
from rag.ingest import reports as reports_module
from rag.ingest.deid import (
    PLACEHOLDER,
    Pseudonymizer,
    deidentify,
    identifier_hashes,
    identifier_tokens,
    scrub_identifiers,
    scrub_labelled_fields,
    scrub_report_text,
)
from rag.ingest.discover import SourceFile, SourceKind
from rag.ingest.pipeline import ingest
from rag.ingest.reports import ReportLinker, ingest_report_file
from rag.ingest.sections import parse_echo_report
from rag.ingest.writer import StudyKey, store_report
from rag.simulate.archive import SimulationOptions, simulate_archive
from rag.store import Patient, Report, ReportSection, open_store
from rag.store.models import IdentifierHash
from rag.vocab.sections import FREE_TEXT

KEY = b"report-deid-test-key-0123456789"
TINY = SimulationOptions(height=96, width=128, doppler_probability=0.0, mp4_probability=0.0, still_count=0)


# --- layer 1: labelled fields ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Patient Name: Smith, John\nMRN: MRN1234567\nDOB: 01/02/1950\nAge: 73  Sex: Male",
            "Patient Name: [REMOVED]\nMRN: [REMOVED]\nDOB: [REMOVED]\nAge: 73  Sex: Male",
        ),
        (
            "Patient: SMITH, JOHN  MRN: MRN1234567  Date: May 24, 2020",
            "Patient: [REMOVED]  MRN: [REMOVED]  Date: May 24, 2020",
        ),
        (
            "Name: John Smith | Patient ID: 99-1234 | Exam Date: 03/04/2023",
            "Name: [REMOVED] | Patient ID: [REMOVED] | Exam Date: 03/04/2023",
        ),
        ("patient name: smith john mrn: 12345 age: 54", "patient name: [REMOVED] mrn: [REMOVED] age: 54"),
        (
            "Referring Physician: Dr. A. Jones. LV size is normal.",
            "Referring Physician: [REMOVED]. LV size is normal.",
        ),
        ("Performing physician = Dr Who, MD", "Performing physician = [REMOVED]"),
        ("Reading physician: Mrs. Lee; Sonographer: KB", "Reading physician: [REMOVED]; Sonographer: [REMOVED]"),
        (
            "Date of Birth: 1 Jan 1950\nAccession Number: ACC778899",
            "Date of Birth: [REMOVED]\nAccession Number: [REMOVED]",
        ),
        ("Address: 1 Main St, Springfield\nPhone: +1 555 123 4567", "Address: [REMOVED]\nPhone: [REMOVED]"),
        ("Medical Record Number: 777123  ID: 42", "Medical Record Number: [REMOVED]  ID: [REMOVED]"),
        ("Seen for follow-up (MRN 12345678), acc# A-7731.", "Seen for follow-up (MRN [REMOVED]), acc# [REMOVED]."),
    ],
)
def test_labelled_identifying_values_are_removed(text: str, expected: str) -> None:
    assert scrub_labelled_fields(text) == expected
    assert scrub_labelled_fields(expected) == expected  # idempotent


def test_labelled_field_scrubbing_keeps_clinical_text() -> None:
    text = (
        "Left Ventricle: Normal size. LVEF 55%. LVIDd: 5.2 cm, IVSd: 0.9 cm.\n"
        "Mitral Valve: Mild MR. MR: mild. AS: none.\n"
        "Protocol Name: Adult echo\n"
        "Indication: dyspnea. Comparison: prior study of 2020.\n"
        "The patient tolerated the study well; no patient identification issues."
    )
    assert scrub_labelled_fields(text) == text


# --- layer 2: the patient's tokens, by keyed hash ------------------------------------------------------


def test_identifier_token_rule() -> None:
    tokens = identifier_tokens(["SMITH-JONES^MARY ANN^^MRS", "LONG^LI", "O'BRIEN^J"], ["MRN1234567", "A-77", "123"])
    assert {"smith-jones", "smith", "jones", "mary", "ann", "li", "o'brien", "brien", "mrn1234567"} <= tokens
    assert "mrs" not in tokens  # a title
    assert "long" not in tokens  # a clinical word ("parasternal long axis")
    assert "j" not in tokens and "o" not in tokens  # under 2 characters
    assert "a-77" in tokens and "77" not in tokens and "123" not in tokens  # digits only: at least 4


def test_scrub_identifiers_matches_by_hash_only() -> None:
    pz = Pseudonymizer(KEY)
    hashes = identifier_hashes(pz, ["QUIMBY^ZEPHYR"], ["ZQ991234"])
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes)
    text = "Mr Quimby tolerated the study; QUIMBY's ID ZQ991234. Zephyrs and quimbyx stay. LVEF 55%."
    out = scrub_identifiers(text, pz, hashes)
    assert out == "Mr XXXX tolerated the study; XXXX's ID XXXX. Zephyrs and quimbyx stay. LVEF 55%."
    other = Pseudonymizer(b"some-other-key-0123456789")
    assert scrub_identifiers(text, other, hashes) == text  # the hashes only work under their key


def test_a_patient_named_like_a_clinical_word_keeps_the_clinical_text() -> None:
    pz = Pseudonymizer(KEY)
    text = "Patient Name: LONG, MR\nParasternal long axis view. Mild MR. Mr Long tolerated the study."
    out = scrub_report_text(text, pz, identifier_hashes(pz, ["LONG^MR"], []))
    assert out.startswith(f"Patient Name: {PLACEHOLDER}\nParasternal long axis view. Mild MR.")


def _store_bytes(db_files: list[Path]) -> bytes:
    return b"".join(p.read_bytes() for p in db_files).lower()


def test_free_text_surname_is_scrubbed_through_stored_hashes(tmp_path: Path) -> None:
    pz = Pseudonymizer(KEY)
    db = tmp_path / "store.sqlite3"
    store = open_store(f"sqlite:///{db}")
    # an earlier run: the study's DICOM header is de-identified and its patient stored
    ds = Dataset()
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = "1.2.3.4", "1.2.3.4.1", "1.2.3.4.1.1"
    ds.PatientName, ds.PatientID, ds.AccessionNumber = "QUIMBY^ZEPHYR", "ZQ991234", "ACC55501"
    deid = deidentify(ds, pz, fallback_patient_key="unused")
    study = StudyKey(deid.patient_pseudonym, deid.study_uid_hash, identifier_hashes=deid.identifier_hashes)
    store_report(store, study, kind="echo", content_sha256="0" * 64, text="earlier", sections=[], measurements=[])

    # a later run: only the report arrives
    path = tmp_path / "in" / "report.txt"
    path.parent.mkdir()
    path.write_text(
        "StudyInstanceUID: 1.2.3.4\n"
        "Left Ventricle: Normal size and systolic function. LVEF 60%.\n"
        "Mitral Valve: Mild MR.\n"
        "Mr Quimby tolerated the study well; Zephyr was cooperative (accession ACC55501, chart ZQ991234).\n"
    )
    outcome = ingest_report_file(SourceFile(path, SourceKind.REPORT), store, pz, ReportLinker())
    assert outcome.status == "ingested", outcome.reason
    with store.session() as s:
        report = s.scalars(select(Report).where(Report.text != "earlier")).one()
        texts = [report.text, *(x.text for x in report.sections)]
        stored = set(s.scalars(select(IdentifierHash.token_hash)))
    store.close()
    assert stored == set(deid.identifier_hashes) and len(stored) == 4  # quimby, zephyr, zq991234, acc55501
    joined = "\n".join(texts)
    for word in ("quimby", "zephyr", "zq991234", "acc55501"):
        assert word not in joined.lower(), word
    assert "Mr XXXX tolerated the study well; XXXX was cooperative" in report.text
    assert "Left Ventricle: Normal size and systolic function. LVEF 60%." in report.text
    # the raw tokens are nowhere in the store, only their keyed hashes
    dump = _store_bytes(sorted(tmp_path.glob("store.sqlite3*")))
    assert next(iter(stored)).encode() in dump
    for raw_token in (b"quimby", b"zephyr", b"zq991234", b"acc55501"):
        assert raw_token not in dump, raw_token


# --- the bug: a report ingested in a later run than its study --------------------------------------


@pytest.fixture(scope="module")
def one_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first study folder of a simulated patient: DICOM cines and a report naming the patient."""
    out = tmp_path_factory.mktemp("sim") / "archive"
    simulate_archive(out, patients=1, seed=25, options=TINY)
    return sorted(p for p in (out / "patients").glob("*/*") if p.is_dir())[0]


def _identity(dicoms: list[Path]) -> set[str]:
    """The patient's name parts and IDs as the DICOM headers give them."""
    found: set[str] = set()
    for f in dicoms:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        found |= {p for p in re.split(r"[\^=\s,]+", str(ds.PatientName)) if len(p) > 1}
        found |= {str(ds.PatientID), str(ds.AccessionNumber)}
    return found


def _cfg(home: Path) -> RagConfig:
    return load_config(home=home, pseudonym_key=KEY.decode(), ingest={"frames": 4, "size": 32})


def _stored_reports(cfg: RagConfig) -> list[tuple[str, dict[str, str]]]:
    store = open_store(cfg.db_url)
    with store.session() as s:
        out = [(r.text, {x.name: x.text for x in r.sections}) for r in s.scalars(select(Report))]
        assert s.scalars(select(ReportSection)).all()
    store.close()
    return out


def test_report_ingested_after_its_study_is_scrubbed(one_study: Path, tmp_path: Path) -> None:
    dicoms = sorted(one_study.glob("*.dcm"))
    identity = _identity(dicoms)
    assert len(identity) >= 4  # family and given name, patient ID, accession number
    raw = (one_study / "report.txt").read_text(encoding="utf-8")
    uid = str(pydicom.dcmread(dicoms[0], stop_before_pixels=True).StudyInstanceUID)
    family, given = str(pydicom.dcmread(dicoms[0], stop_before_pixels=True).PatientName).split("^")[:2]
    assert family.lower() in raw.lower()  # the report names the patient
    # free text naming the patient, which no label announces
    extra = f"\nNote: Mr {family.title()} tolerated the study well; {given.title()} asked for a copy.\n"
    report_text = f"StudyInstanceUID: {uid}\n{raw}{extra}"

    # the study's DICOM files in one run, its report in a later one
    first, second = tmp_path / "dicoms", tmp_path / "reports"
    first.mkdir()
    second.mkdir()
    for f in dicoms:
        shutil.copy(f, first / f.name)
    (second / "report.txt").write_text(report_text, encoding="utf-8")
    split = _cfg(tmp_path / "ws-split")
    assert ingest([first], split).counts == {"ingested": len(dicoms), "skipped": 0, "duplicate": 0}
    later = ingest([second], split)
    assert later.counts == {"ingested": 1, "skipped": 0, "duplicate": 0}, later.to_json()

    [(text, sections)] = _stored_reports(split)
    for value in identity:
        for stored in (text, *sections.values()):
            assert not re.search(rf"(?<!\w){re.escape(value)}(?!\w)", stored, re.IGNORECASE), value
    assert f"{PLACEHOLDER}" in text and "Mr XXXX tolerated the study well; XXXX asked for a copy." in text
    # clinical sections intact: as parsed from the original text
    original = {x.name: x.text for x in parse_echo_report(raw).sections if x.name != FREE_TEXT}
    assert len(original) >= 10
    assert {k: v for k, v in sections.items() if k != FREE_TEXT} == original

    # nothing of the identity anywhere in the store's files
    dump = _store_bytes(sorted((tmp_path / "ws-split").glob("*.sqlite3*")))
    for value in identity:
        assert value.lower().encode() not in dump, value
    store = open_store(split.db_url)
    with store.session() as s:
        assert s.scalars(select(IdentifierHash)).all()
        assert len(s.scalars(select(Patient)).all()) == 1
    store.close()

    # the same text as when the report arrives with its DICOM files
    together_dir = tmp_path / "together"
    together_dir.mkdir()
    for f in dicoms:
        shutil.copy(f, together_dir / f.name)
    (together_dir / "report.txt").write_text(report_text, encoding="utf-8")
    together = _cfg(tmp_path / "ws-together")
    assert ingest([together_dir], together).counts["ingested"] == len(dicoms) + 1
    assert _stored_reports(together) == [(text, sections)]


def test_a_failing_report_scrub_does_not_end_the_batch(
    one_study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> str:
        raise RuntimeError("scrubber bug")

    monkeypatch.setattr(reports_module, "scrub_report_text", broken)
    src = tmp_path / "in"
    shutil.copytree(one_study, src)
    result = ingest([src], _cfg(tmp_path / "ws"))
    n_dicoms = len(list(one_study.glob("*.dcm")))
    assert result.counts == {"ingested": n_dicoms, "skipped": 1, "duplicate": 0}
    [skipped] = [x for x in result.items if x.status == "skipped"]
    assert skipped.path.endswith("report.txt") and skipped.reason == "RuntimeError: scrubber bug"


def test_reingesting_a_study_fills_in_the_hashes_of_an_older_store(one_study: Path, tmp_path: Path) -> None:
    dicoms = sorted(one_study.glob("*.dcm"))
    header = pydicom.dcmread(dicoms[0], stop_before_pixels=True)
    family = str(header.PatientName).split("^")[0]
    src = tmp_path / "dicoms"
    src.mkdir()
    for f in dicoms:
        shutil.copy(f, src / f.name)
    cfg = _cfg(tmp_path / "ws")
    ingest([src], cfg)
    store = open_store(cfg.db_url)
    with store.session() as s:  # as if stored before the hashes were kept
        for row in s.scalars(select(IdentifierHash)):
            s.delete(row)
    store.close()

    assert ingest([src], cfg).counts == {"ingested": 0, "skipped": 0, "duplicate": len(dicoms)}
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "r.txt").write_text(
        f"StudyInstanceUID: {header.StudyInstanceUID}\nLeft Ventricle: Normal.\nMr {family.title()} was calm.\n"
    )
    assert ingest([reports], cfg).counts["ingested"] == 1
    [(text, _)] = _stored_reports(cfg)
    assert "Mr XXXX was calm." in text and family.lower() not in text.lower()
