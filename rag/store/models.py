"""The case store's tables (SQLAlchemy 2 typed ORM).

Nothing identifying is stored: patients are keyed-hash pseudonyms, instance UIDs are replaced by
keyed-hash UIDs, dates are shifted per patient, a patient's name parts and IDs are kept only as
keyed hashes (to scrub later reports), and no source path is kept.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    """Declarative base of every table."""


class Patient(Base):
    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    studies: Mapped[list[Study]] = relationship(back_populates="patient", cascade="all, delete-orphan")
    identifier_hashes: Mapped[list[IdentifierHash]] = relationship(
        back_populates="patient", cascade="all, delete-orphan"
    )


class IdentifierHash(Base):
    """A keyed hash (HMAC-SHA256 under the pseudonym key) of one identifying token of a patient.

    The tokens are name parts and IDs from the patient's DICOM headers (see `rag.ingest.identifiers`);
    only their hashes are stored, so that report text arriving later can be scrubbed of them.
    """

    __tablename__ = "identifier_hashes"
    __table_args__ = (UniqueConstraint("patient_id", "token_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64))

    patient: Mapped[Patient] = relationship(back_populates="identifier_hashes")


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    uid_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    study_date: Mapped[dt.date | None] = mapped_column(Date)
    modality: Mapped[str | None] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    patient: Mapped[Patient] = relationship(back_populates="studies")
    series: Mapped[list[Series]] = relationship(back_populates="study", cascade="all, delete-orphan")
    reports: Mapped[list[Report]] = relationship(back_populates="study", cascade="all, delete-orphan")
    measurements: Mapped[list[Measurement]] = relationship(back_populates="study", cascade="all, delete-orphan")


class Series(Base):
    __tablename__ = "series"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    uid_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    modality: Mapped[str | None] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(String(256))

    study: Mapped[Study] = relationship(back_populates="series")
    clips: Mapped[list[Clip]] = relationship(back_populates="series", cascade="all, delete-orphan")
    images: Mapped[list[StillImage]] = relationship(back_populates="series", cascade="all, delete-orphan")


class Clip(Base):
    """A preprocessed cine: sampled by time, masked, resized, stored as a file under the workspace."""

    __tablename__ = "clips"

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"), index=True)
    instance_uid_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    content_sha256: Mapped[str] = mapped_column(String(64), index=True)  # of the decoded source frames
    source_sha256: Mapped[str] = mapped_column(String(64), index=True)  # of the encoded pixel data / file
    source_format: Mapped[str] = mapped_column(String(16))  # dicom | video
    view_label: Mapped[str | None] = mapped_column(String(64))
    view_source: Mapped[str | None] = mapped_column(String(32))
    source_frames: Mapped[int] = mapped_column(Integer)
    source_height: Mapped[int] = mapped_column(Integer)
    source_width: Mapped[int] = mapped_column(Integer)
    fps: Mapped[float | None] = mapped_column(Float)
    timing_source: Mapped[str] = mapped_column(String(32))
    photometric: Mapped[str] = mapped_column(String(32))
    is_grayscale: Mapped[bool]
    mask_source: Mapped[str] = mapped_column(String(16))
    frames: Mapped[int] = mapped_column(Integer)
    looped_frames: Mapped[int] = mapped_column(Integer, default=0)
    size: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(512))  # relative to the workspace
    header: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # de-identified DICOM JSON, no bulk data
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    series: Mapped[Series] = relationship(back_populates="clips")


class StillImage(Base):
    """A single frame (DICOM still, PNG or JPEG), masked and resized like clips."""

    __tablename__ = "images"

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"), index=True)
    instance_uid_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    content_sha256: Mapped[str] = mapped_column(String(64), index=True)
    source_sha256: Mapped[str] = mapped_column(String(64), index=True)
    source_format: Mapped[str] = mapped_column(String(16))  # dicom | image
    source_height: Mapped[int] = mapped_column(Integer)
    source_width: Mapped[int] = mapped_column(Integer)
    photometric: Mapped[str] = mapped_column(String(32))
    is_grayscale: Mapped[bool]
    mask_source: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(512))
    header: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    series: Mapped[Series] = relationship(back_populates="images")


class Report(Base):
    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # echo | cxr
    content_sha256: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    text: Mapped[str] = mapped_column(Text)  # scrubbed: labelled identifying fields, the patient's names and IDs, dates
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    study: Mapped[Study] = relationship(back_populates="reports")
    sections: Mapped[list[ReportSection]] = relationship(
        back_populates="report", cascade="all, delete-orphan", order_by="ReportSection.position"
    )


class ReportSection(Base):
    __tablename__ = "report_sections"
    __table_args__ = (UniqueConstraint("report_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    text: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer)

    report: Mapped[Report] = relationship(back_populates="sections")


class Measurement(Base):
    __tablename__ = "measurements"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    report_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64), index=True)
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(32))

    study: Mapped[Study] = relationship(back_populates="measurements")


class ApiKey(Base):
    """An API key of the HTTP service: only the SHA-256 of the secret is stored, with its scopes."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))  # the secret's first characters, to recognise it in lists
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    scopes: Mapped[str] = mapped_column(String(128))  # space-separated: read upload admin
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """Who read or changed which case, when: append-only (database triggers refuse UPDATE and DELETE)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_name: Mapped[str] = mapped_column(String(64), index=True)
    study_id: Mapped[int | None] = mapped_column(Integer, index=True)
    action: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
