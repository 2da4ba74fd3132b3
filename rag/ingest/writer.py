"""Writing ingested items to the case store, one transaction per item.

The clip file is written atomically before the row; if the transaction fails the file is removed, so a
failed item leaves neither a row nor a file behind.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rag.core.clipfile import relative_clip_path, write_atomic
from rag.ingest.prepare import PreparedMedia
from rag.store import Clip, Measurement, Patient, Report, ReportSection, Series, StillImage, Store, Study
from rag.store.models import IdentifierHash


@dataclass(frozen=True)
class StudyKey:
    """The pseudonymised identity of a study."""

    patient_pseudonym: str
    uid_hash: str
    study_date: dt.date | None = None
    modality: str | None = None
    description: str | None = None
    identifier_hashes: frozenset[str] = frozenset()
    """Keyed hashes of the patient's identifying tokens, remembered with the patient when stored."""


@dataclass(frozen=True)
class SeriesKey:
    uid_hash: str
    modality: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class MediaTarget:
    """Where a prepared item goes in the store."""

    study: StudyKey
    series: SeriesKey
    instance_uid_hash: str
    header: dict[str, Any] | None = None


@dataclass(frozen=True)
class StoredHashes:
    source_sha256: str
    content_sha256: str
    record: str | None = None  # the stored row, e.g. "clip:12"


def existing_content(session: Session, instance_uid_hash: str) -> StoredHashes | None:
    """The hashes stored for an instance (clip or still), or ``None`` when it is new."""
    for kind, model in (("clip", Clip), ("image", StillImage)):
        found = session.execute(
            select(model.source_sha256, model.content_sha256, model.id).where(
                model.instance_uid_hash == instance_uid_hash
            )
        ).first()
        if found is not None:
            return StoredHashes(found[0], found[1], f"{kind}:{found[2]}")
    return None


def _study(session: Session, key: StudyKey) -> Study:
    study = session.scalar(select(Study).where(Study.uid_hash == key.uid_hash))
    if study is None:
        patient = session.scalar(select(Patient).where(Patient.pseudonym == key.patient_pseudonym))
        if patient is None:
            patient = Patient(pseudonym=key.patient_pseudonym)
            session.add(patient)
        study = Study(
            patient=patient,
            uid_hash=key.uid_hash,
            study_date=key.study_date,
            modality=key.modality,
            description=key.description,
        )
        session.add(study)
    if key.identifier_hashes:
        _remember_identifiers(session, study.patient, key.identifier_hashes)
    return study


def _remember_identifiers(session: Session, patient: Patient, hashes: frozenset[str]) -> None:
    """Add the token hashes the patient does not have yet."""
    if patient.id is None:
        session.flush()
    known = set(session.scalars(select(IdentifierHash.token_hash).where(IdentifierHash.patient_id == patient.id)))
    session.add_all(IdentifierHash(patient_id=patient.id, token_hash=h) for h in sorted(hashes - known))


def remember_identifier_hashes(store: Store, key: StudyKey) -> None:
    """Add the key's token hashes to its stored study's patient; nothing when the study is not stored.

    For instances already stored (duplicates), so that re-ingesting a study fills in the hashes of a
    store written before they were kept.
    """
    if not key.identifier_hashes:
        return
    with store.session() as s:
        study = s.scalar(select(Study).where(Study.uid_hash == key.uid_hash))
        if study is not None:
            _remember_identifiers(s, study.patient, key.identifier_hashes)


def stored_identifier_hashes(store: Store, patient_pseudonym: str) -> set[str]:
    """The token hashes remembered for a patient (empty when the patient is not stored)."""
    with store.session() as s:
        return set(
            s.scalars(
                select(IdentifierHash.token_hash)
                .join(Patient, Patient.id == IdentifierHash.patient_id)
                .where(Patient.pseudonym == patient_pseudonym)
            )
        )


def _series(session: Session, study: Study, key: SeriesKey) -> Series:
    series = session.scalar(select(Series).where(Series.uid_hash == key.uid_hash))
    if series is not None:
        return series
    series = Series(study=study, uid_hash=key.uid_hash, modality=key.modality, description=key.description)
    session.add(series)
    return series


def store_media(store: Store, media_dir: Path, target: MediaTarget, item: PreparedMedia) -> str:
    """Write one prepared item (file, then rows) and return its record name, e.g. ``clip:12``."""
    rel = relative_clip_path(item.stored_kind + "s", target.instance_uid_hash)
    dest = media_dir / rel
    existed = dest.exists()
    write_atomic(dest, item.data)
    try:
        with store.session() as s:
            series = _series(s, _study(s, target.study), target.series)
            row: Clip | StillImage
            if item.stored_kind == "clip":
                row = Clip(
                    series=series,
                    instance_uid_hash=target.instance_uid_hash,
                    content_sha256=item.content_sha256,
                    source_sha256=item.source_sha256,
                    source_format=item.source_format,
                    view_label=item.view.view if item.view else None,
                    view_source=item.view.source if item.view else None,
                    source_frames=item.source_frames,
                    source_height=item.source_height,
                    source_width=item.source_width,
                    fps=item.fps,
                    timing_source=item.timing_source,
                    photometric=item.photometric,
                    is_grayscale=item.is_grayscale,
                    mask_source=item.mask_source,
                    frames=item.frames,
                    looped_frames=item.looped_frames,
                    size=item.size,
                    path=str(rel),
                    header=target.header,
                )
            else:
                row = StillImage(
                    series=series,
                    instance_uid_hash=target.instance_uid_hash,
                    content_sha256=item.content_sha256,
                    source_sha256=item.source_sha256,
                    source_format=item.source_format,
                    source_height=item.source_height,
                    source_width=item.source_width,
                    photometric=item.photometric,
                    is_grayscale=item.is_grayscale,
                    mask_source=item.mask_source,
                    size=item.size,
                    path=str(rel),
                    header=target.header,
                )
            s.add(row)
            s.flush()
            return f"{item.stored_kind}:{row.id}"
    except BaseException:
        if not existed:
            dest.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class ParsedSection:
    name: str
    text: str
    position: int


@dataclass(frozen=True)
class ParsedMeasurement:
    name: str
    value: float
    unit: str
    source: str


def report_exists(session: Session, content_sha256: str) -> bool:
    return session.scalar(select(Report.id).where(Report.content_sha256 == content_sha256)) is not None


def store_report(
    store: Store,
    study: StudyKey,
    *,
    kind: str,
    content_sha256: str,
    text: str,
    sections: list[ParsedSection],
    measurements: list[ParsedMeasurement],
) -> str:
    """Write a report with its sections and measurements in one transaction; returns ``report:<id>``."""
    with store.session() as s:
        st = _study(s, study)
        report = Report(study=st, kind=kind, content_sha256=content_sha256, text=text)
        report.sections = [ReportSection(name=x.name, text=x.text, position=x.position) for x in sections]
        s.add(report)
        s.flush()
        for m in measurements:
            s.add(Measurement(study=st, report_id=report.id, name=m.name, value=m.value, unit=m.unit, source=m.source))
        return f"report:{report.id}"


def referenced_paths(store: Store) -> list[str]:
    """Every media path the store references (relative to the media folder)."""
    with store.session() as s:
        return list(s.scalars(select(Clip.path))) + list(s.scalars(select(StillImage.path)))
