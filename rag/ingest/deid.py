"""De-identification on ingest: the DICOM Basic Profile on headers, and the public names of the package.

The work is split by seam: keyed pseudonyms, UIDs, date offsets and token hashes live in
`rag.ingest.pseudonym`; free-text scrubbing in `rag.ingest.scrub` (dates, given names and IDs, and
the report pipeline), `rag.ingest.labelled_fields` (values of labelled identifying fields) and
`rag.ingest.identifiers` (the patient's tokens matched by keyed hash). Their public names are
importable from here as well.

`deidentify` turns a DICOM header into a new, de-identified one that may be stored. It follows the
Basic Application Level Confidentiality Profile of PS3.15 Annex E (the attribute list is
`rag.ingest.ps315`) with two options:

- **Retain Longitudinal Temporal Information with Modified Dates**: every DA and DT value is moved
  by a per-patient number of days (`Pseudonymizer.date_offset_days`), so the intervals between a
  patient's studies survive and temporal comparison still works. Times of day (TM, and the time
  part of DT) are kept: stress-echo stages and serial studies of one day need them, and without the
  true date (hidden by the keyed offset) a time of day does not point to a patient.
- **Clean Descriptors**: Study Description, Series Description and Protocol Name are kept, cleaned
  of the patient's name parts and IDs, of dates and of runs of four or more digits. The other
  descriptors of the table are removed, as the Basic Profile does without the option.

Where an action code leaves a choice that depends on the attribute's Type in the IOD (``X/Z``,
``X/D``, ``X/Z/D``, ``Z/D``, ``X/Z/U*``), the least revealing choice is taken (remove, else empty):
the header is stored for search and display, not sent on as a conformant SOP Instance. For the same
reason ``D`` on a sequence or on binary data removes the attribute. Beyond the table, all private
attributes, curve and overlay groups and the pixel data are left out, and Patient ID and Patient's
Name become the keyed patient pseudonym. UIDs are replaced by keyed UIDs under the ``2.25`` root,
so the same original UID always maps to the same new one under the same key (references between
instances stay consistent) and nobody without the key can go back.

The key never appears in logs, reprs or error messages; logs carry counts and pseudonymous UIDs only.
"""

from __future__ import annotations

import copy
import logging
import re
import struct
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Final

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import UID

from rag.core.errors import DeidentificationError
from rag.ingest.identifiers import COMMON_WORDS, identifier_hashes, identifier_tokens, scrub_identifiers
from rag.ingest.labelled_fields import PLACEHOLDER, scrub_labelled_fields
from rag.ingest.ps315 import ACTIONS
from rag.ingest.pseudonym import DEFAULT_OFFSET_RANGE, KEY_ENV, MIN_KEY_BYTES, Pseudonymizer
from rag.ingest.scrub import TextScrubber, scrub_report_text, scrub_text

__all__ = [
    "CLEANED_DESCRIPTORS",
    "COMMON_WORDS",
    "DEFAULT_OFFSET_RANGE",
    "KEY_ENV",
    "MIN_KEY_BYTES",
    "PLACEHOLDER",
    "DeidResult",
    "Pseudonymizer",
    "deidentify",
    "header_to_json",
    "identifier_hashes",
    "identifier_tokens",
    "scrub_identifiers",
    "scrub_labelled_fields",
    "scrub_report_text",
    "scrub_text",
]

_log = logging.getLogger(__name__)

_PATIENT_NAME: Final = 0x00100010
_PATIENT_ID: Final = 0x00100020
_PATIENT_BIRTH_DATE: Final = 0x00100030
_PATIENT_BIRTH_TIME: Final = 0x00100032

CLEANED_DESCRIPTORS: Final[frozenset[int]] = frozenset(
    {
        0x00081030,  # StudyDescription
        0x0008103E,  # SeriesDescription
        0x00181030,  # ProtocolName
    }
)
"""Descriptors kept under the Clean Descriptors Option (cleaned, not removed)."""

_FILE_META_KEPT: Final = (
    "FileMetaInformationVersion",
    "MediaStorageSOPClassUID",
    "TransferSyntaxUID",
    "ImplementationClassUID",
    "ImplementationVersionName",
)

_DUMMY_TEXT: Final = "REMOVED"
_TEXT_VRS: Final = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT"})
_INT_VRS: Final = frozenset({"US", "SS", "UL", "SL", "UV", "SV"})
_FLOAT_VRS: Final = frozenset({"FL", "FD"})

# (code value, code meaning) of CID 7050 "De-identification Method", scheme DCM.
_METHOD_CODES: Final = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    ("113105", "Clean Descriptors Option"),
)

_DT_RE: Final = re.compile(r"^(\d{8})(\d{0,6}(?:\.\d{1,6})?(?:[+-]\d{4})?)$")


@dataclass(frozen=True, slots=True)
class DeidResult:
    """A de-identified header and the keys to store it under.

    The date offset is deliberately absent: it can only be derived with the key.
    """

    dataset: Dataset = field(repr=False)
    """The de-identified header: a new dataset, without pixel data."""
    patient_pseudonym: str
    study_uid_hash: str
    """The replacement Study Instance UID (``2.25.…``)."""
    series_uid_hash: str
    """The replacement Series Instance UID."""
    sop_uid_hash: str
    """The replacement SOP Instance UID."""
    study_date: date | None
    """The shifted Study Date (else Series, Acquisition or Content Date); None when there is none."""
    modality: str | None
    study_description: str | None
    """The cleaned Study Description, None when absent or empty after cleaning."""
    series_description: str | None
    """The cleaned Series Description, None when absent or empty after cleaning."""
    identifier_hashes: frozenset[str] = frozenset()
    """Keyed hashes of the patient's name parts and IDs (`rag.ingest.identifiers`), never the tokens."""


@dataclass
class _Context:
    pz: Pseudonymizer
    pseudonym: str
    offset_days: int
    scrubber: TextScrubber
    removed: int = 0
    replaced: int = 0
    private: int = 0
    unreadable: list[str] = field(default_factory=list)


def _tag_str(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _texts(value: Any) -> list[str]:
    """The values of an element as strings (bytes of an unresolved UN are decoded)."""
    if value is None:
        return []
    if isinstance(value, bytes | bytearray):
        text = bytes(value).decode("latin-1").strip(" \x00")
        return text.split("\\") if text else []
    if isinstance(value, MultiValue | list | tuple):
        return [_as_str(v) for v in value]
    return [_as_str(value)]


def _as_str(value: Any) -> str:
    # DA/DT/TM objects (with pydicom's datetime conversion on) keep the text they were read from;
    # a PersonName's original_string holds encoded bytes, so its str() is the text.
    original = getattr(value, "original_string", None)
    return original if isinstance(original, str) else str(value)


def _shift_da(value: str, days: int) -> str | None:
    s = value.strip().replace(".", "").replace("-", "")
    if len(s) != 8 or not s.isdigit():
        return None
    try:
        d = date(int(s[:4]), int(s[4:6]), int(s[6:])) + timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    return f"{d.year:04d}{d.month:02d}{d.day:02d}"


def _shift_dt(value: str, days: int) -> str | None:
    m = _DT_RE.match(value.strip())
    if m is None:
        return None
    head = _shift_da(m.group(1), days)
    return None if head is None else head + m.group(2)


def _parse_da(value: Any) -> date | None:
    texts = _texts(value)
    if len(texts) != 1 or len(texts[0]) < 8 or not texts[0][:8].isdigit():
        return None
    s = texts[0]
    try:
        return date(int(s[:4]), int(s[4:6]), int(s[6:8]))
    except ValueError:
        return None


def _effective_vr(elem: DataElement) -> str:
    if elem.VR != "UN":
        return str(elem.VR)
    try:
        return str(dictionary_VR(elem.tag))
    except KeyError:
        return "UN"


def _dummy(tag: int, vr: str) -> DataElement | None:
    if vr in _TEXT_VRS:
        return DataElement(tag, vr, _DUMMY_TEXT)
    if vr in ("IS", "DS"):
        return DataElement(tag, vr, "0")
    if vr in _INT_VRS:
        return DataElement(tag, vr, 0)
    if vr in _FLOAT_VRS:
        return DataElement(tag, vr, 0.0)
    return None  # sequences, binary data, AS, AT, UR: removed (see the module docstring)


def _empty(tag: int, vr: str) -> DataElement | None:
    if vr == "SQ":
        return DataElement(tag, "SQ", Sequence())
    if vr == "UN":
        return None
    return DataElement(tag, vr, None)


def _is_left_out(tag: int) -> bool:
    """Tags never copied: private, pixel data, group lengths, command and file meta groups,
    curves and overlays."""
    group, element = tag >> 16, tag & 0xFFFF
    return (
        group % 2 == 1
        or element == 0
        or group in (0x0000, 0x0002, 0x7FE0)
        or (0x5000 <= group <= 0x50FF)
        or (0x6000 <= group <= 0x60FF)
    )


def _clean_dataset(src: Dataset, ctx: _Context, *, depth: int) -> Dataset:
    out = Dataset()
    for key in list(src.keys()):
        tag = int(key)
        if _is_left_out(tag):
            if (tag >> 16) % 2 == 1:
                ctx.private += 1
            else:
                ctx.removed += 1
            continue
        try:
            elem = src[key]
        except (ValueError, TypeError, KeyError, NotImplementedError, struct.error):
            # An element pydicom cannot decode cannot be checked either: it is left out.
            ctx.unreadable.append(_tag_str(tag))
            continue
        new = _clean_element(elem, ctx, depth=depth)
        if new is not None:
            out.add(new)
    return out


def _replace_uids(tag: int, values: list[str], ctx: _Context) -> DataElement | None:
    mapped = [ctx.pz.uid(v) for v in values if v.strip(" \x00")]
    ctx.replaced += 1
    if not mapped:
        return DataElement(tag, "UI", None)
    return DataElement(tag, "UI", mapped[0] if len(mapped) == 1 else mapped)


def _clean_element(elem: DataElement, ctx: _Context, *, depth: int) -> DataElement | None:
    tag = int(elem.tag)
    vr = _effective_vr(elem)
    action = ACTIONS.get(tag)

    if tag == _PATIENT_BIRTH_DATE:  # Z, and not under the longitudinal option
        ctx.replaced += 1
        return _empty(tag, "DA")
    if tag == _PATIENT_BIRTH_TIME:  # X
        ctx.removed += 1
        return None
    if vr in ("DA", "DT"):
        # Every date, in the table or not, is shifted (Retain Longitudinal ... Modified Dates).
        values = _texts(elem.value)
        shift = _shift_da if vr == "DA" else _shift_dt
        shifted = [shift(v, ctx.offset_days) for v in values if v.strip()]
        ctx.replaced += 1
        if any(s is None for s in shifted):
            return _empty(tag, vr)  # unreadable dates cannot be shifted: emptied
        clean = [s for s in shifted if s is not None]
        return DataElement(tag, vr, (clean[0] if len(clean) == 1 else clean) if clean else None)
    if vr == "TM":  # times of day are kept (see the module docstring)
        if elem.VR == "TM":
            return copy.deepcopy(elem)
        times = _texts(elem.value)
        return DataElement(tag, "TM", (times[0] if len(times) == 1 else times) if times else None)
    if tag in CLEANED_DESCRIPTORS:
        cleaned = ctx.scrubber.clean_descriptor(" ".join(_texts(elem.value)))
        ctx.replaced += 1
        return DataElement(tag, vr, cleaned) if cleaned else None
    if depth == 0 and tag in (_PATIENT_NAME, _PATIENT_ID):
        ctx.replaced += 1
        return DataElement(tag, "PN" if tag == _PATIENT_NAME else "LO", ctx.pseudonym)

    if action is None:  # not in the table: kept, sequences cleaned
        if vr == "SQ":
            if not isinstance(elem.value, Sequence):
                ctx.unreadable.append(_tag_str(tag))
                return None
            items = [_clean_dataset(item, ctx, depth=depth + 1) for item in elem.value]
            return DataElement(tag, "SQ", Sequence(items))
        if vr == "UN" and isinstance(elem.value, bytes | bytearray):
            ctx.unreadable.append(_tag_str(tag))  # unknown attribute, unknown content
            return None
        return copy.deepcopy(elem)

    if action.startswith("X"):
        ctx.removed += 1
        return None
    if vr == "UI":  # U, and D on a UID
        return _replace_uids(tag, _texts(elem.value), ctx)
    ctx.replaced += 1
    if action in ("Z", "Z/D"):
        return _empty(tag, vr)
    new = _dummy(tag, vr)  # D
    if new is None:
        ctx.replaced -= 1
        ctx.removed += 1
    return new


def _text_values(ds: Dataset, keyword: str) -> list[str]:
    try:
        return [s for s in _texts(ds.get(keyword)) if s.strip()]
    except (ValueError, TypeError) as e:
        raise DeidentificationError(f"The {keyword} attribute cannot be decoded; fix or drop the file") from e


def _identity(ds: Dataset) -> tuple[list[str], list[str]]:
    names = [
        n
        for kw in ("PatientName", "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName")
        for n in _text_values(ds, kw)
    ]
    ids = [i for kw in ("PatientID", "OtherPatientIDs", "AccessionNumber", "StudyID") for i in _text_values(ds, kw)]
    for item in ds.get("OtherPatientIDsSequence") or []:
        ids += _text_values(item, "PatientID")
    return names, ids


def _required_uid(ds: Dataset, keyword: str) -> str:
    values = _text_values(ds, keyword)
    if not values:
        raise DeidentificationError(
            f"The instance has no {keyword}, which is needed to group and identify it; nothing is stored"
        )
    return values[0]


def deidentify(ds: Dataset, pz: Pseudonymizer, *, fallback_patient_key: str) -> DeidResult:
    """A de-identified copy of a DICOM header (see the module docstring for the rules).

    ``ds`` is not changed. The copy leaves out the pixel data (group 7FE0): the caller keeps the
    pixels apart, and masks burned-in text there; Patient Identity Removed refers to the header.

    Args:
        ds: the instance as read by pydicom (pixel data may be present or not).
        pz: the keyed pseudonymizer.
        fallback_patient_key: stands for the patient when Patient ID is empty (see
            `Pseudonymizer.patient_pseudonym`), e.g. the Study Instance UID or the source folder.

    Raises:
        DeidentificationError: a Study, Series or SOP Instance UID is missing, or the patient
            identity cannot be read; nothing of the instance should be stored.
    """
    study_uid = _required_uid(ds, "StudyInstanceUID")
    series_uid = _required_uid(ds, "SeriesInstanceUID")
    sop_uid = _required_uid(ds, "SOPInstanceUID")
    patient_id = " ".join(_text_values(ds, "PatientID"))
    issuer = " ".join(_text_values(ds, "IssuerOfPatientID"))
    pseudonym = pz.patient_pseudonym(patient_id, issuer, fallback=fallback_patient_key)
    names, ids = _identity(ds)
    ctx = _Context(pz, pseudonym, pz.date_offset_days(pseudonym), TextScrubber(names, ids))

    out = _clean_dataset(ds, ctx, depth=0)
    new_study, new_series, new_sop = pz.uid(study_uid), pz.uid(series_uid), pz.uid(sop_uid)
    out.StudyInstanceUID, out.SeriesInstanceUID, out.SOPInstanceUID = new_study, new_series, new_sop
    out.PatientName, out.PatientID = pseudonym, pseudonym
    out.PatientIdentityRemoved = "YES"
    out.LongitudinalTemporalInformationModified = "MODIFIED"
    out.DeidentificationMethod = [meaning for _, meaning in _METHOD_CODES]
    codes = []
    for value, meaning in _METHOD_CODES:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
        codes.append(item)
    out.DeidentificationMethodCodeSequence = Sequence(codes)

    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        new_meta = FileMetaDataset()
        for kw in _FILE_META_KEPT:
            if kw in meta:
                setattr(new_meta, kw, copy.deepcopy(meta[kw].value))
        new_meta.MediaStorageSOPInstanceUID = UID(new_sop)
        out.file_meta = new_meta

    if ctx.unreadable:
        _log.warning(
            "left out %d attributes that could not be decoded and checked: %s",
            len(ctx.unreadable),
            ", ".join(ctx.unreadable[:20]),
        )
    _log.debug(
        "de-identified instance %s: %d attributes removed, %d replaced, %d private left out",
        new_sop,
        ctx.removed,
        ctx.replaced,
        ctx.private,
    )
    descriptions = [(" ".join(_texts(out.get(kw))) or None) for kw in ("StudyDescription", "SeriesDescription")]
    modality = " ".join(_text_values(ds, "Modality")) or None
    return DeidResult(
        dataset=out,
        patient_pseudonym=pseudonym,
        study_uid_hash=new_study,
        series_uid_hash=new_series,
        sop_uid_hash=new_sop,
        study_date=_result_date(out),
        modality=modality,
        study_description=descriptions[0],
        series_description=descriptions[1],
        identifier_hashes=identifier_hashes(pz, names, ids),
    )


def _result_date(ds: Dataset) -> date | None:
    for kw in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate", "AcquisitionDateTime"):
        d = _parse_da(ds.get(kw))
        if d is not None:
            return d
    return None


_BULK_MARK: Final = "rag:bulk-data-left-out"


def _drop_bulk(node: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for tag, entry in node.items():
        if entry.get("BulkDataURI") == _BULK_MARK:
            continue
        if entry.get("vr") == "SQ" and "Value" in entry:
            entry = {**entry, "Value": [_drop_bulk(item) for item in entry["Value"]]}
        out[tag] = entry
    return out


def header_to_json(ds: Dataset, *, bulk_data_threshold: int = 1024) -> dict[str, Any]:
    """The header in the DICOM JSON model (PS3.18 F.2), bulk data left out.

    Binary values (OB, OW, OF, OD, OL, OV, UN) longer than ``bulk_data_threshold`` bytes, such as
    pixel data or palette lookup tables, are dropped with their attribute; shorter ones stay inline
    as base64. File meta information is not included.
    """

    def handler(_: DataElement) -> str:
        return _BULK_MARK

    data = ds.to_json_dict(bulk_data_threshold=bulk_data_threshold, bulk_data_element_handler=handler)
    return _drop_bulk(data)
