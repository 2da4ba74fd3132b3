"""De-identification on ingest: keyed pseudonyms, the DICOM Basic Profile, and free-text scrubbing.

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
import hashlib
import hmac
import logging
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Final

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import UID

from rag.core.errors import ConfigError, DeidentificationError
from rag.ingest.ps315 import ACTIONS

__all__ = [
    "CLEANED_DESCRIPTORS",
    "DEFAULT_OFFSET_RANGE",
    "DeidResult",
    "Pseudonymizer",
    "deidentify",
    "header_to_json",
    "scrub_text",
]

_log = logging.getLogger(__name__)

KEY_ENV: Final = "RAG_PSEUDONYM_KEY"
MIN_KEY_BYTES: Final = 8
DEFAULT_OFFSET_RANGE: Final = (-365, -30)
"""Default range of the per-patient date shift, in days (both ends included; never 0)."""

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

# --- dates in free text ---------------------------------------------------------------------------

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DAY = r"(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?"
_NO_NUM_BEFORE = r"(?<!\d)(?<!\d[.,])"
_NO_NUM_AFTER = r"(?![.,]?\d)"
_DATE_RE: Final = re.compile(
    "|".join(
        [
            rf"\b{_MONTH}\s+{_DAY},?\s+\d{{4}}\b",  # Jan 31, 2024
            rf"\b{_DAY}\s+{_MONTH},?\s+\d{{4}}\b",  # 31 Jan 2024
            rf"\b{_DAY}-{_MONTH}-(?:\d{{4}}|\d{{2}})\b",  # 31-Jan-2024
            rf"\b{_MONTH}\s+\d{{4}}\b",  # January 2024
            rf"{_NO_NUM_BEFORE}\d{{4}}([-/.])\d{{1,2}}\1\d{{1,2}}{_NO_NUM_AFTER}",  # 2024-01-31
            rf"{_NO_NUM_BEFORE}\d{{1,2}}([-/.])\d{{1,2}}\2(?:\d{{4}}|\d{{2}}){_NO_NUM_AFTER}",  # 31/01/2024
            r"(?<!\d)(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?!\d)",  # 20240131
        ]
    ),
    re.IGNORECASE,
)
_LONG_DIGITS: Final = re.compile(r"(?<!\d)\d{4,}(?!\d)")
_NAME_SPLIT: Final = re.compile(r"[\^=\s,]+")
_DT_RE: Final = re.compile(r"^(\d{8})(\d{0,6}(?:\.\d{1,6})?(?:[+-]\d{4})?)$")

_MIN_NAME_PART = 2
_MIN_ID = 3


# --- pseudonymizer --------------------------------------------------------------------------------


class Pseudonymizer:
    """Keyed (HMAC-SHA256) pseudonyms, UIDs and date offsets.

    Everything is deterministic under one key: the same patient ID gives the same pseudonym and date
    offset in every run, and the same UID the same replacement, so studies ingested at different
    times still link up. A different key gives unrelated values. Keep the key: losing it means new
    pseudonyms for everyone; leaking it lets anyone holding a patient ID find that patient's data.

    Args:
        key: the secret, at least 8 bytes; use a random one (e.g. ``secrets.token_hex(32).encode()``):
            with a guessable key, anyone holding a patient ID can recompute the pseudonym.
        offset_range: (low, high) days of the per-patient date shift, both included. The range may
            not contain 0, so that no patient keeps true dates.
    """

    __slots__ = ("_key", "_offset_range")

    def __init__(self, key: bytes, *, offset_range: tuple[int, int] = DEFAULT_OFFSET_RANGE) -> None:
        if not isinstance(key, bytes | bytearray):
            raise TypeError("key must be bytes; use Pseudonymizer.from_settings() to pass a string")
        if len(key) < MIN_KEY_BYTES:
            raise DeidentificationError(
                f"The pseudonymisation key is {len(key)} bytes long; use at least {MIN_KEY_BYTES} (better 32 "
                f"random) bytes in {KEY_ENV}, e.g. the output of: "
                "python -c 'import secrets; print(secrets.token_hex(32))'"
            )
        low, high = offset_range
        if low > high or low <= 0 <= high:
            raise ConfigError(
                f"offset_range={offset_range!r} is invalid: it needs low <= high and must not contain 0 "
                f"(a zero shift keeps true dates); e.g. {DEFAULT_OFFSET_RANGE!r}"
            )
        self._key = bytes(key)
        self._offset_range = (low, high)

    @classmethod
    def from_settings(cls, key: str | None, *, offset_range: tuple[int, int] = DEFAULT_OFFSET_RANGE) -> Pseudonymizer:
        """Build from a configured key string (encoded as UTF-8).

        Raises:
            DeidentificationError: ``key`` is missing or empty. Whether to fall back to a generated key
                is the caller's decision, never made here.
        """
        if key is None or not key.strip():
            raise DeidentificationError(
                f"No pseudonymisation key: set the {KEY_ENV} environment variable (or pass key=...) to a "
                f"secret of at least {MIN_KEY_BYTES} bytes (32 random ones are better), and keep it: "
                "pseudonyms only stay stable under the same key"
            )
        return cls(key.encode("utf-8"), offset_range=offset_range)

    def __repr__(self) -> str:
        return f"Pseudonymizer(key=<hidden>, offset_range={getattr(self, '_offset_range', None)!r})"

    @property
    def offset_range(self) -> tuple[int, int]:
        """(low, high) days of the date shift."""
        return self._offset_range

    @property
    def key_fingerprint(self) -> str:
        """A short keyed digest that tells keys apart without revealing them (to record in a store)."""
        return self._digest(b"key-fingerprint")[:6].hex()

    def _digest(self, domain: bytes, *parts: str) -> bytes:
        msg = bytearray(domain)
        for part in parts:
            data = part.encode("utf-8")
            msg += len(data).to_bytes(4, "big") + data
        return hmac.new(self._key, bytes(msg), hashlib.sha256).digest()

    def patient_pseudonym(self, patient_id: str, issuer: str = "", *, fallback: str | None = None) -> str:
        """The patient's pseudonym: ``"P"`` and 16 hex digits.

        The issuer takes part in the hash, so the same ID from two issuers names two patients (and
        a patient whose issuer is sometimes missing gets two pseudonyms: fill the issuer
        consistently or leave it out consistently).

        When ``patient_id`` is empty, the pseudonym is derived from ``fallback`` instead, a key that
        the caller chooses to stand for the unknown patient (e.g. the Study Instance UID or the
        source folder): every instance sharing that fallback then shares one pseudonym, stable
        across runs, and never collides with a pseudonym made from a real ID.

        Raises:
            DeidentificationError: the patient ID and the fallback are both empty.
        """
        pid = patient_id.strip()
        if pid:
            digest = self._digest(b"patient", issuer.strip(), pid)
        elif fallback is not None and fallback.strip():
            digest = self._digest(b"patient-fallback", fallback.strip())
        else:
            raise DeidentificationError(
                "The patient ID is empty and no fallback was given; pass fallback=... (for instance the "
                "Study Instance UID) so that the instance still gets a stable pseudonym"
            )
        return "P" + digest[:8].hex()

    def uid(self, original_uid: str) -> str:
        """A UID under the ``2.25`` root derived from the keyed hash of ``original_uid``.

        The number after ``2.25.`` is a 128-bit name-based UUID (version 8), so the result is at
        most 44 characters, has no leading zeros and is the same for the same input and key.

        Raises:
            DeidentificationError: ``original_uid`` is empty.
        """
        value = original_uid.strip().strip("\x00").strip()
        if not value:
            raise DeidentificationError("Cannot derive a UID from an empty value; pass the original, non-empty UID")
        raw = bytearray(self._digest(b"uid", value)[:16])
        raw[6] = (raw[6] & 0x0F) | 0x80  # UUID version 8 (custom)
        raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
        return f"2.25.{int.from_bytes(raw, 'big')}"

    def date_offset_days(self, pseudonym: str) -> int:
        """The patient's date shift in days, within `offset_range` and never 0."""
        low, high = self._offset_range
        n = int.from_bytes(self._digest(b"date-offset", pseudonym)[:8], "big")
        return low + n % (high - low + 1)

    def shift_date(self, d: date, pseudonym: str) -> date:
        """``d`` moved by the patient's offset.

        Raises:
            DeidentificationError: the shifted date falls outside the calendar (year 1 to 9999).
        """
        try:
            return d + timedelta(days=self.date_offset_days(pseudonym))
        except OverflowError as e:
            raise DeidentificationError("A date cannot be shifted: it is at the edge of the calendar") from e


# --- free text ------------------------------------------------------------------------------------


class _Scrubber:
    """Finds the patient's name parts, IDs and dates in text."""

    def __init__(self, names: Iterable[str], ids: Iterable[str]) -> None:
        tokens: set[str] = set()
        for name in names:
            tokens.update(p for p in _NAME_SPLIT.split(str(name)) if len(p) >= _MIN_NAME_PART)
        tokens.update(s for s in (str(i).strip() for i in ids) if len(s) >= _MIN_ID)
        ordered = sorted(tokens, key=lambda t: (-len(t), t))
        self._identity = (
            re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, ordered)) + r")(?!\w)", re.IGNORECASE)
            if ordered
            else None
        )

    def scrub(self, text: str, replacement: str) -> str:
        text = _DATE_RE.sub(replacement, text)
        if self._identity is not None:
            text = self._identity.sub(replacement, text)
        return text

    def clean_descriptor(self, text: str) -> str:
        text = _LONG_DIGITS.sub("", self.scrub(text, ""))
        return " ".join(text.split()).strip(" -_,;:/^")


def scrub_text(text: str, *, names: Iterable[str], ids: Iterable[str]) -> str:
    """Replace the patient's name parts, IDs and dates in free text (a report) with ``"XXXX"``.

    Matching ignores case and respects word boundaries. ``names`` may hold whole names (DICOM
    ``FAMILY^GIVEN`` or ``Given Family``); each part of at least 2 characters is searched for. IDs
    are searched for whole, when at least 3 characters long (shorter ones would erase ordinary
    numbers). Dates are found in the common forms 2024-01-31, 2024/01/31, 31/01/2024, 01/31/2024,
    31.01.2024, 20240131, Jan 31, 2024, 31 January 2024, 31-Jan-2024 and January 2024; numbers such as
    measurements, ratios and ranges (5.2 cm, 120/80, 1.5-2.0) are left alone.

    Names that the caller does not know (a relative, a physician) are not found: this is a safety
    net for the identifiers the header gives, not a general name detector.
    """
    return _Scrubber(names, ids).scrub(text, "XXXX")


# --- DICOM ----------------------------------------------------------------------------------------


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


@dataclass
class _Context:
    pz: Pseudonymizer
    pseudonym: str
    offset_days: int
    scrubber: _Scrubber
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
    ctx = _Context(pz, pseudonym, pz.date_offset_days(pseudonym), _Scrubber(names, ids))

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
