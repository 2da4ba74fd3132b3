"""Studies from a PACS over DICOMweb: QIDO-RS to find them, WADO-RS to fetch them.

``search_studies(url, patient=..., date=...)`` lists studies (UID, date, description, modalities,
instance count) without fetching pixels; ``fetch_study(url, uid, folder)`` writes each instance as a
``.dcm`` file (server-chosen names) into ``folder`` for the ingestion pipeline, which de-identifies
as for any DICOM folder. Uses the ``dicomweb-client`` package; a PACS that does not answer, or a
study it does not hold, is a :class:`DicomWebError` with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.core.errors import RagError

__all__ = ["DicomWebError", "PacsStudy", "fetch_study", "search_studies"]

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_DATE = re.compile(r"^\d{8}(-\d{8})?$|^-\d{8}$|^\d{8}-$")


class DicomWebError(RagError):
    """The PACS cannot be searched or a study cannot be fetched."""


@dataclass(frozen=True)
class PacsStudy:
    """One study as the PACS lists it (before any de-identification: shown to the user who asked)."""

    study_uid: str
    date: str | None
    description: str | None
    modalities: tuple[str, ...]
    instances: int | None
    patient_id: str | None


def _client(url: str) -> Any:
    try:
        from dicomweb_client.api import DICOMwebClient
    except ImportError as e:  # pragma: no cover - a dependency of the package
        raise DicomWebError("DICOMweb needs the dicomweb-client package: pip install dicomweb-client") from e
    return DICOMwebClient(url=url.rstrip("/"))


def _value(attrs: dict[str, Any], tag: str) -> Any:
    values = attrs.get(tag, {}).get("Value")
    if not values:
        return None
    first = values[0]
    return first.get("Alphabetic") if isinstance(first, dict) else first


def search_studies(
    url: str, *, patient: str | None = None, date: str | None = None, limit: int = 100
) -> list[PacsStudy]:
    """Studies on the PACS at ``url`` (its DICOMweb root), optionally by patient ID and study date
    (``YYYYMMDD`` or a range ``YYYYMMDD-YYYYMMDD``).

    Raises:
        DicomWebError: a malformed date, or the PACS does not answer.
    """
    if date is not None and not _DATE.match(date):
        raise DicomWebError(f"study date {date!r}: use YYYYMMDD or a range YYYYMMDD-YYYYMMDD")
    filters: dict[str, str] = {}
    if patient:
        filters["PatientID"] = patient
    if date:
        filters["StudyDate"] = date
    fields = ["StudyDescription", "ModalitiesInStudy", "NumberOfStudyRelatedInstances", "PatientID", "StudyDate"]
    try:
        found = _client(url).search_for_studies(search_filters=filters, fields=fields, limit=limit)
    except Exception as e:  # requests' and the client's errors alike: the PACS did not answer as asked
        raise DicomWebError(f"the PACS at {url} cannot be searched: {type(e).__name__}: {str(e)[:200]}") from e
    out = []
    for attrs in found:
        uid = _value(attrs, "0020000D")
        if uid is None:
            continue
        modalities = attrs.get("00080061", {}).get("Value") or []
        count = _value(attrs, "00201208")
        out.append(
            PacsStudy(
                study_uid=str(uid),
                date=_value(attrs, "00080020"),
                description=_value(attrs, "00081030"),
                modalities=tuple(str(m) for m in modalities),
                instances=int(count) if count is not None else None,
                patient_id=_value(attrs, "00100020"),
            )
        )
    return out


def fetch_study(url: str, study_uid: str, folder: Path) -> list[Path]:
    """Fetch every instance of ``study_uid`` into ``folder`` as ``NNNNN.dcm``.

    Raises:
        DicomWebError: a malformed UID, a study the PACS does not hold, or the PACS does not answer.
    """
    if not _UID.match(study_uid) or len(study_uid) > 64:
        raise DicomWebError(f"{study_uid!r} is not a DICOM UID (digits and dots, at most 64 characters)")
    try:
        instances = _client(url).retrieve_study(study_uid)
    except Exception as e:
        raise DicomWebError(
            f"study {study_uid} cannot be fetched from {url}: {type(e).__name__}: {str(e)[:200]}"
        ) from e
    if not instances:
        raise DicomWebError(f"the PACS at {url} holds no instance of study {study_uid}")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, dataset in enumerate(instances):
        path = folder / f"{n:05d}.dcm"
        dataset.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
