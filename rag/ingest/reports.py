"""Ingesting report files: finding their study, scrubbing identifiers, splitting sections.

A text report belongs to the study named by a ``StudyInstanceUID: <uid>`` line in it, or else to the
one study whose DICOM files share its folder. Indiana University chest X-ray XML reports make a study
of their own. The stored text never holds the study UID line, and is scrubbed by `scrub_report_text`:
the values of labelled identifying fields, the patient's name parts and IDs (by keyed hash, from the
DICOM headers of this run and those remembered by the case store from earlier runs) and dates.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from rag.core.errors import IngestError, RagError
from rag.ingest.discover import SourceFile
from rag.ingest.measurements import extract_measurements
from rag.ingest.outcome import ItemOutcome
from rag.ingest.pseudonym import Pseudonymizer
from rag.ingest.scrub import scrub_report_text
from rag.ingest.sections import ParsedReport, detect_report_kind, parse_cxr_report, parse_echo_report, parse_iu_xray_xml
from rag.ingest.writer import (
    ParsedMeasurement,
    ParsedSection,
    StudyKey,
    report_exists,
    store_report,
    stored_identifier_hashes,
)
from rag.store import Patient, Store, Study
from rag.vocab.sections import FREE_TEXT

_UID_LINE = re.compile(r"^\s*Study\s*Instance\s*UID\s*[:=]\s*([0-9.]+)\s*$", re.IGNORECASE | re.MULTILINE)
MAX_REPORT_BYTES = 2_000_000


@dataclass
class ReportLinker:
    """What the DICOM headers of this run say about studies, folders and the tokens to scrub.

    ``identifier_hashes`` holds, per patient pseudonym, the keyed hashes of the identifying tokens of
    the headers seen in this run (never the tokens): a report is scrubbed of them even when its
    study's media could not be stored.
    """

    by_uid: dict[str, StudyKey] = field(default_factory=dict)
    by_folder: dict[Path, dict[str, StudyKey]] = field(default_factory=lambda: defaultdict(dict))
    identifier_hashes: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add_dicom(self, path: Path, study_uid: str, study: StudyKey) -> None:
        self.by_uid[study_uid] = study
        self.by_folder[path.parent.resolve()][study.uid_hash] = study
        self.identifier_hashes[study.patient_pseudonym] |= study.identifier_hashes

    def study_for_folder(self, folder: Path, pz: Pseudonymizer) -> StudyKey:
        """The one DICOM study of ``folder``, else a study that stands for the folder itself."""
        studies = self.by_folder.get(folder.resolve(), {})
        if len(studies) == 1:
            return next(iter(studies.values()))
        key = f"folder:{folder.resolve()}"
        return StudyKey(patient_pseudonym=pz.patient_pseudonym(key, "rag-folder"), uid_hash=pz.uid(key))


def _stored_study(store: Store, uid_hash: str) -> StudyKey | None:
    with store.session() as s:
        row = s.execute(select(Study, Patient.pseudonym).join(Patient).where(Study.uid_hash == uid_hash)).first()
    if row is None:
        return None
    study, pseudonym = row
    return StudyKey(pseudonym, study.uid_hash, study.study_date, study.modality, study.description)


def _find_study(text: str, src: SourceFile, store: Store, pz: Pseudonymizer, linker: ReportLinker) -> StudyKey:
    m = _UID_LINE.search(text)
    if m:
        uid = m.group(1)
        if uid in linker.by_uid:
            return linker.by_uid[uid]
        stored = _stored_study(store, pz.uid(uid))
        if stored is None:
            raise IngestError(
                f"the report names StudyInstanceUID {uid[:8]}..., which is neither in this batch nor stored; "
                "ingest the study's DICOM files with it"
            )
        return stored
    studies = linker.by_folder.get(src.path.parent.resolve(), {})
    if len(studies) == 1:
        return next(iter(studies.values()))
    where = "several studies" if studies else "no DICOM study"
    raise IngestError(
        f"cannot tell which study this report belongs to: its folder holds {where}; put it beside its "
        "study's DICOM files or add a line 'StudyInstanceUID: <uid>'"
    )


def _measured_text(parsed: ParsedReport) -> str:
    """The text measurements are read from: the anatomical sections of an echo report, not the free text.

    Comparison, indication and history lines hold prior or referred values ("prior LVEF 61%"); reading
    them first would take a stranger-in-time's number for today's.
    """
    if parsed.kind != "echo":
        return ""
    return "\n".join(x.text for x in parsed.sections if x.name != FREE_TEXT)


def _read_text(path: Path) -> str:
    size = path.stat().st_size
    if size > MAX_REPORT_BYTES:
        raise IngestError(f"report file is {size} bytes, over the {MAX_REPORT_BYTES}-byte limit")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise IngestError(f"report is not UTF-8 text (byte {e.start}); save it as UTF-8") from e


def ingest_report_file(src: SourceFile, store: Store, pz: Pseudonymizer, linker: ReportLinker) -> ItemOutcome:
    """Ingest one report file; every failure becomes a skipped outcome with its reason."""

    def outcome(status: Any, reason: str | None = None, record: str | None = None) -> ItemOutcome:
        return ItemOutcome(str(src.path), str(src.kind), status, reason, record)

    try:
        raw = _read_text(src.path)
        sha = hashlib.sha256(raw.encode()).hexdigest()
        with store.session() as s:
            if report_exists(s, sha):
                return outcome("duplicate", "report already stored (same text)")
        hashes: set[str] = set()
        if src.path.suffix.lower() == ".xml":
            iu = parse_iu_xray_xml(raw)
            key = f"iu-xray:{iu.report_id}"
            study = StudyKey(pz.patient_pseudonym(key, "iu-xray"), pz.uid(key), modality="CR")
            kind, text = "cxr", "\n\n".join(f"{x.name}: {x.text}" for x in iu.report.sections)
        else:
            study = _find_study(raw, src, store, pz, linker)
            hashes = linker.identifier_hashes.get(study.patient_pseudonym, set())
            hashes = hashes | stored_identifier_hashes(store, study.patient_pseudonym)
            study = dataclasses.replace(study, identifier_hashes=frozenset(hashes))
            text = _UID_LINE.sub("", raw).strip()
            kind = detect_report_kind(text)
        clean = scrub_report_text(text, pz, hashes)
        parsed = parse_echo_report(clean) if kind == "echo" else parse_cxr_report(clean)
        sections = [ParsedSection(x.name, x.text, x.position) for x in parsed.sections]
        measurements = [
            ParsedMeasurement(m.name, m.value, m.unit, m.source) for m in extract_measurements(_measured_text(parsed))
        ]
        record = store_report(
            store,
            study,
            kind=kind,
            content_sha256=sha,
            text=clean,
            sections=sections,
            measurements=measurements,
        )
    except (RagError, OSError, SQLAlchemyError) as e:
        return outcome("skipped", str(e).splitlines()[0] if str(e) else type(e).__name__)
    return outcome("ingested", record=record)
