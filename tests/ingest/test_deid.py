"""De-identification: the PS3.15 table, keyed pseudonyms, `deidentify`, `scrub_text`, `header_to_json`."""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import UID

from rag.core.errors import ConfigError, DeidentificationError
from rag.ingest import ps315
from rag.ingest.deid import (
    CLEANED_DESCRIPTORS,
    DeidResult,
    Pseudonymizer,
    deidentify,
    header_to_json,
    scrub_text,
)

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dicom"
REAL_FILES = ["US-PAL-8-10x-echo.dcm", "US1_UNCR.dcm", "gdcm-US-ALOKA-16.dcm"]

KEY = b"unit-test-key-0123456789abcdef"
OTHER_KEY = b"another-key-0123456789abcdef!!"
UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")

PATIENT_NAME_TAG = 0x00100010
PATIENT_ID_TAG = 0x00100020
ULTRASOUND_REGIONS = 0x00186011

# Values of the synthetic instance: every identifying text carries the marker ZQX (or ZQY).
FAKE_NAME = "ZQXFAMILY^ZQXGIVEN"
FAKE_ID = "ZQX778899"
FAKE_DATE = "20230115"
FAKE_DATETIME = "20230115101112"
FAKE_TIME = "101112"
MARKERS = ("ZQX", "ZQY")
FAKE_DESCRIPTIONS = {
    0x00081030: ("TTE zqxfamily ZQX778899 2023-01-15 Adult", "TTE Adult"),
    0x0008103E: ("PLAX ZQXGIVEN 20230115 view", "PLAX view"),
    0x00181030: ("Adult Echo 123456", "Adult Echo"),
}
EXPIRY_DATE = 0x00141020  # a DA attribute that Table E.1-1 does not list
TEXT_VRS = {"AE", "AS", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"}


@pytest.fixture
def pz() -> Pseudonymizer:
    return Pseudonymizer(KEY)


def _is_valid_uid(value: str) -> bool:
    return (
        len(value) <= 64
        and UID_RE.match(value) is not None
        and all(c == "0" or not c.startswith("0") for c in value.split("."))
    )


def _real(name: str) -> Dataset:
    path = DATA_DIR / name
    if not path.is_file():
        pytest.skip(f"shared test file {name} is not in {DATA_DIR}")
    return pydicom.dcmread(path)


# --- the table ------------------------------------------------------------------------------------


def test_table_keywords_and_vrs_agree_with_pydicom() -> None:
    wrong = [
        f"({a.group:04X},{a.element:04X}) {a.keyword}/{a.vr}: pydicom has "
        f"{keyword_for_tag(a.tag)}/{dictionary_VR(a.tag)}"
        for a in ps315.ATTRIBUTES
        if keyword_for_tag(a.tag) != a.keyword or dictionary_VR(a.tag) != a.vr
    ]
    assert not wrong, "\n".join(wrong)


def test_table_is_complete_and_consistent() -> None:
    tags = [a.tag for a in ps315.ATTRIBUTES]
    assert len(tags) == len(set(tags)) > 600
    assert tags == sorted(tags)
    allowed = {"D", "Z", "X", "K", "C", "U", "Z/D", "X/Z", "X/D", "X/Z/D", "X/Z/U*"}
    assert {a.action for a in ps315.ATTRIBUTES} <= allowed
    by_keyword = {a.keyword: a.action for a in ps315.ATTRIBUTES}
    expected = {
        "PatientName": "Z",
        "PatientBirthDate": "Z",
        "PatientSex": "Z",
        "PatientAge": "X",
        "IssuerOfPatientID": "X",
        "OtherPatientIDs": "X",
        "AccessionNumber": "Z",
        "InstitutionName": "X/Z/D",
        "InstitutionAddress": "X",
        "ReferringPhysicianName": "Z",
        "OperatorsName": "X/Z/D",
        "PerformingPhysicianName": "X",
        "StationName": "X/Z/D",
        "DeviceSerialNumber": "X/Z/D",
        "StudyID": "Z",
        "RequestAttributesSequence": "X",
        "ContentDate": "Z/D",
        "ContentTime": "Z/D",
        "AcquisitionDateTime": "X/Z/D",
        "StudyDate": "Z",
        "SeriesDate": "X/D",
        "AcquisitionDate": "X/Z",
        "StudyDescription": "X",
        "SeriesDescription": "X",
        "ReferencedImageSequence": "X/Z/U*",
    }
    assert {k: by_keyword.get(k) for k in expected} == expected
    assert "PatientID" in by_keyword
    for kw in (
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
        "FrameOfReferenceUID",
        "ReferencedSOPInstanceUID",
        "MediaStorageSOPInstanceUID",
    ):
        assert by_keyword[kw] == "U", kw
    assert ULTRASOUND_REGIONS not in ps315.ACTIONS  # needed for masking, not identifying
    assert frozenset(ps315.ACTIONS) == ps315.IDENTIFYING  # no K in the Basic Profile column
    assert all(ps315.ATTRIBUTES_BY_TAG[t].vr == "UI" for t in ps315.UID_TAGS)
    assert {0x00080020, 0x00080033, 0x0008002A} <= ps315.DATE_TIME_TAGS
    assert {ps315.ATTRIBUTES_BY_TAG[t].vr for t in ps315.DATE_TIME_TAGS} == {"DA", "DT", "TM"}


def test_repeating_group_rows() -> None:
    assert ps315.repeating_group_action(0x60003000) == "X"  # Overlay Data
    assert ps315.repeating_group_action(0x60024000) == "X"  # Overlay Comments
    assert ps315.repeating_group_action(0x50003000) == "X"  # Curve Data
    assert ps315.repeating_group_action(0x60000010) is None  # Overlay Rows
    assert ps315.repeating_group_action(0x00100010) is None
    assert ps315.PRIVATE_ACTION == "X"


# --- pseudonymizer --------------------------------------------------------------------------------


def test_patient_pseudonym_is_stable_and_keyed() -> None:
    a, b, other = Pseudonymizer(KEY), Pseudonymizer(KEY), Pseudonymizer(OTHER_KEY)
    p = a.patient_pseudonym("12345", "HOSP")
    assert re.fullmatch(r"P[0-9a-f]{16}", p)
    assert p == b.patient_pseudonym("12345", "HOSP") == a.patient_pseudonym(" 12345 ", "HOSP")
    assert p != other.patient_pseudonym("12345", "HOSP")
    assert p != a.patient_pseudonym("12345", "OTHER")
    assert p != a.patient_pseudonym("12346", "HOSP")


def test_empty_patient_id_uses_the_fallback() -> None:
    a, b = Pseudonymizer(KEY), Pseudonymizer(KEY)
    p = a.patient_pseudonym("", fallback="1.2.3.4")
    assert p == b.patient_pseudonym("  ", fallback="1.2.3.4")
    assert p != a.patient_pseudonym("1.2.3.4")  # a fallback never collides with a real ID
    assert p != a.patient_pseudonym("", fallback="1.2.3.5")
    with pytest.raises(DeidentificationError, match="fallback"):
        a.patient_pseudonym("")


def test_uids_are_valid_deterministic_and_keyed() -> None:
    a, b, other = Pseudonymizer(KEY), Pseudonymizer(KEY), Pseudonymizer(OTHER_KEY)
    originals = [f"1.2.840.113619.2.{i}.{i * 7919}" for i in range(200)] + ["999.999.1", "1.2.3\x00"]
    mapped = [a.uid(u) for u in originals]
    assert all(_is_valid_uid(u) and u.startswith("2.25.") for u in mapped)
    assert len(set(mapped)) == len(mapped)
    assert mapped == [b.uid(u) for u in originals]
    assert a.uid("1.2.3\x00") == a.uid("1.2.3")
    assert not set(mapped) & {other.uid(u) for u in originals}
    with pytest.raises(DeidentificationError):
        a.uid("  ")


def test_date_offsets_are_keyed_nonzero_and_varied() -> None:
    a, b = Pseudonymizer(KEY), Pseudonymizer(KEY)
    pseudonyms = [a.patient_pseudonym(str(i)) for i in range(100)]
    offsets = [a.date_offset_days(p) for p in pseudonyms]
    assert offsets == [b.date_offset_days(p) for p in pseudonyms]
    assert all(-365 <= o <= -30 for o in offsets)
    assert len(set(offsets)) > 50
    assert offsets != [Pseudonymizer(OTHER_KEY).date_offset_days(p) for p in pseudonyms]
    narrow = Pseudonymizer(KEY, offset_range=(3, 5))
    assert {narrow.date_offset_days(p) for p in pseudonyms} == {3, 4, 5}
    d = date(2024, 2, 29)
    assert a.shift_date(d, pseudonyms[0]) - d == a.shift_date(date(2020, 1, 1), pseudonyms[0]) - date(2020, 1, 1)


@pytest.mark.parametrize("bad", [(-10, 10), (0, 0), (-5, -10)])
def test_invalid_offset_range_is_refused(bad: tuple[int, int]) -> None:
    with pytest.raises(ConfigError, match="offset_range"):
        Pseudonymizer(KEY, offset_range=bad)


def test_key_is_required_and_never_shown() -> None:
    for missing in (None, "", "   "):
        with pytest.raises(DeidentificationError, match="RAG_PSEUDONYM_KEY"):
            Pseudonymizer.from_settings(missing)
    with pytest.raises(DeidentificationError, match="at least 8"):
        Pseudonymizer(b"short")
    secret = "s3cret-value-that-must-stay-hidden"
    pz = Pseudonymizer.from_settings(secret)
    assert pz.uid("1.2.3") == Pseudonymizer(secret.encode()).uid("1.2.3")
    for text in (repr(pz), str(pz), pz.key_fingerprint):
        assert secret not in text and "s3cret" not in text
    assert pz.key_fingerprint == Pseudonymizer(secret.encode()).key_fingerprint
    assert pz.key_fingerprint != Pseudonymizer(KEY).key_fingerprint


# --- the synthetic instance -----------------------------------------------------------------------


@dataclass
class Originals:
    """Identifying values of an input instance, to look for in the output."""

    uids: set[str] = field(default_factory=set)
    dates: set[str] = field(default_factory=set)
    texts: set[str] = field(default_factory=set)


def _walk(ds: Dataset, path: str = "") -> Iterator[tuple[str, DataElement]]:
    for elem in ds:
        where = f"{path}{elem.keyword or elem.tag}"
        yield where, elem
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value):
                yield from _walk(item, f"{where}[{i}].")


def _strings(value: Any) -> list[str]:
    if value is None or isinstance(value, bytes | Sequence):
        return []
    values = value if isinstance(value, list | tuple | MultiValue) else [value]
    return [str(v) for v in values if str(v).strip()]


def _originals(ds: Dataset) -> Originals:
    found = Originals()
    for _, elem in _walk(ds):
        tag = int(elem.tag)
        if tag not in ps315.IDENTIFYING or tag in CLEANED_DESCRIPTORS or elem.VR == "TM":
            continue
        for s in _strings(elem.value):
            if elem.VR == "UI":
                found.uids.add(s)
            elif elem.VR in ("DA", "DT"):
                found.dates.add(s)
            elif elem.VR in TEXT_VRS:
                found.texts.update(p for p in re.split(r"[\^=]", s) if len(p.strip()) >= 4)
    return found


def _nested_item() -> Dataset:
    item = Dataset()
    item.PatientName = "ZQXNESTED^ZQYNESTED"
    item.PatientID = "ZQXNESTEDID"
    item.InstitutionName = "ZQX NESTED HOSPITAL"
    item.OperatorsName = "ZQXOPERATOR"
    item.StudyDate = FAKE_DATE
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.6.1"
    item.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.99.9001"
    item.add_new(0x00310010, "LO", "ZQX PRIVATE CREATOR")
    item.add_new(0x00311001, "LO", "ZQXNESTEDPRIVATE")
    inner = Dataset()
    inner.PersonName = "ZQXINNER^PERSON"
    inner.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.99.9002"
    item.RequestAttributesSequence = Sequence([copy.deepcopy(inner)])  # X
    item.ReferencedInstanceSequence = Sequence([inner])  # not in the table: kept, cleaned
    return item


def _fake_value(tag: int, vr: str, n: int) -> Any:
    text = f"ZQX{tag:08X}"
    values: dict[str, Any] = {
        "PN": f"{text}^ZQYGIVEN",
        "UI": f"1.2.826.0.1.3680043.99.{n + 1}",
        "DA": FAKE_DATE,
        "DT": FAKE_DATETIME,
        "TM": FAKE_TIME,
        "AS": "042Y",
        "UR": f"http://zqx.invalid/{text}",
        "DS": "12.5",
        "IS": "7",
        "US": 7,
        "SS": 7,
        "UL": 7,
        "SL": 7,
        "FL": 7.0,
        "FD": 7.0,
        "SQ": Sequence([_nested_item()]),
    }
    if vr in values:
        return values[vr]
    if vr in ("OB", "OW", "UN", "OF", "OD", "OL", "OV"):
        return (text + "0").encode()  # even length
    return text  # AE, CS, LO, LT, SH, ST, UC, UT: ZQX markers fit every length limit


def _synthetic() -> Dataset:
    ds = Dataset()
    for n, attr in enumerate(ps315.ATTRIBUTES):
        if attr.group in (0x0000, 0x0002):
            continue  # command and file meta groups do not belong in a data set
        ds.add_new(attr.tag, attr.vr, _fake_value(attr.tag, attr.vr, n))
    ds.PatientName = FAKE_NAME
    ds.PatientID = FAKE_ID
    ds.OtherPatientIDs = ["ZQXOTHER123", "ZQXOTHER456"]
    for tag, (text, _) in FAKE_DESCRIPTIONS.items():
        ds[tag].value = text
    ds.add_new(EXPIRY_DATE, "DA", FAKE_DATE)
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.6.1"
    ds.Modality = "US"
    region = Dataset()
    region.RegionSpatialFormat = 1
    region.RegionDataType = 1
    region.RegionLocationMinX0, region.RegionLocationMinY0 = 10, 20
    region.RegionLocationMaxX1, region.RegionLocationMaxY1 = 300, 400
    ds.SequenceOfUltrasoundRegions = Sequence([region])
    ds.ReferencedSeriesSequence = Sequence([_nested_item()])  # not in the table: kept, cleaned
    ds.add_new(0x00090010, "LO", "ZQX CREATOR")
    ds.add_new(0x00091001, "LO", "ZQXPRIVATE")
    ds.add_new(0x60000022, "LO", "ZQXOVERLAY")  # Overlay Description
    ds.add_new(0x60003000, "OW", b"ZQXOVERLAY")  # Overlay Data
    ds.add_new(0x50002500, "LO", "ZQXCURVE")  # Curve Label
    ds.add_new(0x7FE00010, "OB", b"\x01\x02" * 64)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(ds.SOPClassUID)
    ds.file_meta.MediaStorageSOPInstanceUID = UID(ds.SOPInstanceUID)
    ds.file_meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.1")
    ds.file_meta.SourceApplicationEntityTitle = "ZQXSTATION"
    return ds


# --- checking a result ----------------------------------------------------------------------------


def _allowed(elem: DataElement, *, top: bool, result: DeidResult, orig: Originals) -> bool:
    """Whether an attribute of Table E.1-1 may be present in the output in this form."""
    tag, vr, action = int(elem.tag), elem.VR, ps315.ACTIONS[int(elem.tag)]
    values = _strings(elem.value)
    if vr == "SQ":
        return "Z" in action and len(elem.value) == 0  # emptied
    if vr == "UI":  # replaced by a keyed UID
        return (
            bool(values)
            and all(_is_valid_uid(v) and v.startswith("2.25.") for v in values)
            and not (set(values) & orig.uids)
        )
    if vr in ("DA", "DT"):  # shifted (Retain Longitudinal Temporal Information Modified Dates)
        return not set(values) & orig.dates and all(re.fullmatch(r"\d{8}\d*(\.\d+)?([+-]\d{4})?", v) for v in values)
    if vr == "TM":  # times of day are kept under the same option
        return True
    if tag in CLEANED_DESCRIPTORS:  # Clean Descriptors Option; contents checked separately
        return True
    if top and tag in (PATIENT_NAME_TAG, PATIENT_ID_TAG):
        return values == [result.patient_pseudonym]
    if not values:
        return "Z" in action  # emptied
    return "D" in action and values in (["REMOVED"], ["0"], ["0.0"])  # dummy


def _violations(result: DeidResult, orig: Originals) -> list[str]:
    bad = []
    for where, elem in _walk(result.dataset):
        tag = int(elem.tag)
        if elem.tag.is_private:
            bad.append(f"{where}: private attribute")
        elif elem.tag.group == 0x7FE0 or ps315.repeating_group_action(tag) or elem.tag.group in (0x5000, 0x6000):
            bad.append(f"{where}: pixel, curve or overlay data")
        elif tag in ps315.IDENTIFYING and not _allowed(elem, top="." not in where, result=result, orig=orig):
            bad.append(f"{where} [{ps315.ACTIONS[tag]}]: {elem.value!r}")
    return bad


def _leaves(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _leaves(value)
    elif isinstance(node, list):
        for value in node:
            yield from _leaves(value)
    elif isinstance(node, str | int | float):
        yield str(node)


def _leaks(result: DeidResult, orig: Originals) -> list[str]:
    """Original identifying values found anywhere in the JSON of the result."""
    dump = json.dumps(header_to_json(result.dataset))
    leaves = [s for s in _leaves(header_to_json(result.dataset)) if not re.fullmatch(r"2\.25\.\d+", s)]
    leaks = [m for m in MARKERS if m in dump.upper()]
    leaks += sorted(u for u in orig.uids if u in leaves)
    leaks += sorted(d for d in orig.dates | orig.texts if any(d in leaf for leaf in leaves))
    return leaks


# --- deidentify -----------------------------------------------------------------------------------


def test_synthetic_instance_is_fully_deidentified(pz: Pseudonymizer) -> None:
    ds = _synthetic()
    before = copy.deepcopy(ds)
    orig = _originals(ds)
    assert len(orig.uids) > 50 and FAKE_DATE in orig.dates

    result = deidentify(ds, pz, fallback_patient_key="unused")

    assert ds == before and ds.file_meta == before.file_meta  # the input is untouched
    assert not _violations(result, orig), "\n".join(_violations(result, orig))
    assert not _leaks(result, orig), _leaks(result, orig)

    out = result.dataset
    assert result.patient_pseudonym == pz.patient_pseudonym(FAKE_ID, ds.IssuerOfPatientID)
    assert out.PatientName == out.PatientID == result.patient_pseudonym
    assert out.PatientBirthDate in ("", None) and out.PatientSex in ("", None)
    assert "PatientAge" not in out and "PatientBirthTime" not in out and "OtherPatientIDs" not in out
    assert "IssuerOfPatientID" not in out and "RequestAttributesSequence" not in out
    assert "PixelData" not in out and "InstitutionName" not in out
    offset = pz.date_offset_days(result.patient_pseudonym)
    shifted = pz.shift_date(date(2023, 1, 15), result.patient_pseudonym)
    assert (shifted - date(2023, 1, 15)).days == offset
    for kw in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate", "InstanceCreationDate"):
        assert out[kw].value == shifted.strftime("%Y%m%d"), kw
    assert out.AcquisitionDateTime == shifted.strftime("%Y%m%d") + FAKE_TIME
    assert out[EXPIRY_DATE].value == shifted.strftime("%Y%m%d")  # dates outside the table too
    assert out.StudyTime == FAKE_TIME
    assert result.study_date == shifted
    for tag, (_, cleaned) in FAKE_DESCRIPTIONS.items():
        assert out[tag].value == cleaned
    assert (result.study_description, result.series_description) == ("TTE Adult", "PLAX view")
    assert result.modality == "US"
    assert result.study_uid_hash == out.StudyInstanceUID == pz.uid(ds.StudyInstanceUID)
    assert result.series_uid_hash == out.SeriesInstanceUID == pz.uid(ds.SeriesInstanceUID)
    assert result.sop_uid_hash == out.SOPInstanceUID == pz.uid(ds.SOPInstanceUID)
    assert out.file_meta.MediaStorageSOPInstanceUID == result.sop_uid_hash
    assert "SourceApplicationEntityTitle" not in out.file_meta
    assert out.SequenceOfUltrasoundRegions == ds.SequenceOfUltrasoundRegions
    assert out.SOPClassUID == ds.SOPClassUID

    nested = out.ReferencedSeriesSequence[0]
    assert nested.PatientName in ("", None) and nested.PatientID in ("", None)
    assert nested.ReferencedSOPInstanceUID == pz.uid("1.2.826.0.1.3680043.99.9001")
    assert nested.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == pz.uid("1.2.826.0.1.3680043.99.9002")
    assert nested.ReferencedInstanceSequence[0].PersonName == "REMOVED"  # D on a PN: dummy
    assert out.PatientIdentityRemoved == "YES"
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"
    codes = [(c.CodeValue, c.CodingSchemeDesignator) for c in out.DeidentificationMethodCodeSequence]
    assert codes == [("113100", "DCM"), ("113107", "DCM"), ("113105", "DCM")]
    assert len(out.DeidentificationMethod) == 3


@pytest.mark.parametrize("name", REAL_FILES)
def test_real_files_are_deidentified(name: str, pz: Pseudonymizer) -> None:
    ds = _real(name)
    pixels = ds.PixelData
    orig = _originals(ds)

    result = deidentify(ds, pz, fallback_patient_key=f"file:{name}")

    assert ds.PixelData is pixels and "PatientName" in ds  # the input is untouched
    assert not _violations(result, orig), "\n".join(_violations(result, orig))
    assert not _leaks(result, orig), _leaks(result, orig)
    out = result.dataset
    assert "PixelData" not in out
    assert _is_valid_uid(result.sop_uid_hash) and out.file_meta.MediaStorageSOPInstanceUID == result.sop_uid_hash
    assert result.modality == "US"
    assert result.study_date is not None
    assert "ULTRASOUND" in str(out.SOPClassUID.name).upper()
    assert (out.Rows, out.Columns) == (ds.Rows, ds.Columns)
    json.dumps(header_to_json(out))  # serialisable


def test_aloka_patient_name_and_regions(pz: Pseudonymizer) -> None:
    ds = _real("gdcm-US-ALOKA-16.dcm")
    assert str(ds.PatientName) == "NAME^PATIENT^NAME"
    result = deidentify(ds, pz, fallback_patient_key="unused")
    out = result.dataset
    assert out.PatientName == result.patient_pseudonym == pz.patient_pseudonym(ds.PatientID)
    assert out.SequenceOfUltrasoundRegions == ds.SequenceOfUltrasoundRegions
    assert len(out.SequenceOfUltrasoundRegions) == 3
    dump = json.dumps(header_to_json(out))
    assert "PATIENT" not in dump and ds.PatientID not in dump
    assert result.study_date == pz.shift_date(date(2002, 5, 24), result.patient_pseudonym)


def test_json_header_leaves_bulk_data_out(pz: Pseudonymizer) -> None:
    ds = _real("gdcm-US-ALOKA-16.dcm")
    raw = header_to_json(ds)
    assert "7FE00010" not in raw  # pixel data dropped even from an untouched header
    assert "00281221" not in raw  # 175 kB segmented lookup table
    assert raw["00281101"]["Value"] == [0, 0, 16]  # small numeric values stay
    out = header_to_json(deidentify(ds, pz, fallback_patient_key="x").dataset)
    assert out["00186011"]["vr"] == "SQ" and len(out["00186011"]["Value"]) == 3
    small = Dataset()
    small.add_new(0x00281201, "OW", b"\x00\x01" * 8)
    assert "InlineBinary" in header_to_json(small)["00281201"]


def _minimal(patient_id: str, study_date: str, n: int) -> Dataset:
    ds = Dataset()
    ds.PatientID = patient_id
    ds.PatientName = "DOE^JANE"
    ds.StudyDate = study_date
    ds.StudyInstanceUID = f"1.2.3.{n}"
    ds.SeriesInstanceUID = f"1.2.3.{n}.1"
    ds.SOPInstanceUID = f"1.2.3.{n}.1.1"
    ds.Modality = "US"
    return ds


def test_intervals_between_a_patients_studies_survive(pz: Pseudonymizer) -> None:
    first = deidentify(_minimal("PAT-1", "20230115", 1), pz, fallback_patient_key="x")
    second = deidentify(_minimal("PAT-1", "20240302", 2), pz, fallback_patient_key="x")
    assert first.patient_pseudonym == second.patient_pseudonym
    assert first.study_date is not None and second.study_date is not None
    assert (second.study_date - first.study_date).days == (date(2024, 3, 2) - date(2023, 1, 15)).days
    assert first.study_date != date(2023, 1, 15)
    assert first.study_uid_hash != second.study_uid_hash

    shifts = set()
    for i in range(30):
        r = deidentify(_minimal(f"PAT-{i + 100}", "20230115", 10 + i), pz, fallback_patient_key="x")
        assert r.study_date is not None
        shifts.add(r.study_date)
    assert len(shifts) > 20  # different patients, (generally) different offsets

    again = deidentify(_minimal("PAT-1", "20230115", 1), Pseudonymizer(KEY), fallback_patient_key="x")
    assert (again.patient_pseudonym, again.study_uid_hash, again.study_date) == (
        first.patient_pseudonym,
        first.study_uid_hash,
        first.study_date,
    )
    keyed = deidentify(_minimal("PAT-1", "20230115", 1), Pseudonymizer(OTHER_KEY), fallback_patient_key="x")
    assert keyed.patient_pseudonym != first.patient_pseudonym and keyed.study_uid_hash != first.study_uid_hash


def test_missing_patient_id_uses_the_callers_fallback(pz: Pseudonymizer) -> None:
    ds = _minimal("", "20230115", 1)
    del ds.PatientID
    result = deidentify(ds, pz, fallback_patient_key="folder:/data/study-7")
    assert result.patient_pseudonym == pz.patient_pseudonym("", fallback="folder:/data/study-7")
    assert result.dataset.PatientID == result.patient_pseudonym


def test_missing_uid_is_an_error(pz: Pseudonymizer) -> None:
    ds = _minimal("PAT-1", "20230115", 1)
    del ds.SeriesInstanceUID
    with pytest.raises(DeidentificationError, match="SeriesInstanceUID"):
        deidentify(ds, pz, fallback_patient_key="x")


@pytest.mark.filterwarnings("ignore:Invalid value for VR DA")
def test_unshiftable_dates_are_emptied(pz: Pseudonymizer) -> None:
    ds = _minimal("PAT-1", "20230115", 1)
    ds.add_new(0x00080020, "DA", "2023-99")  # StudyDate that is not a date
    ds.AcquisitionDateTime = "2023"
    out = deidentify(ds, pz, fallback_patient_key="x")
    assert out.dataset.StudyDate in ("", None) and out.dataset.AcquisitionDateTime in ("", None)
    assert out.study_date is None


def test_logs_carry_no_identity(pz: Pseudonymizer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="rag")
    ds = _synthetic()
    deidentify(ds, pz, fallback_patient_key="x")
    assert caplog.records  # something was logged, and none of it identifies
    assert not any(m in caplog.text.upper() for m in MARKERS)
    assert KEY.decode() not in caplog.text and FAKE_DATE not in caplog.text


# --- free text ------------------------------------------------------------------------------------


def test_scrub_text_removes_identity_and_keeps_clinical_text() -> None:
    text = (
        "Patient John DOE (MRN 12345678) seen on 2024-01-31; prior 01/31/2024, 31/01/2024, 31.01.2024, "
        "20240131, Jan 31, 2024, 3 March 2023 and January 2022. Mr. Doe's LVEF 55%, BP 120/80 mmHg, "
        "LVIDd 5.2 cm, E/A 0.8, gradient 1.5-2.25 mmHg, TAPSE 18 mm, ratio 1/2/3."
    )
    out = scrub_text(text, names=["DOE^JOHN"], ids=["12345678", "7"])
    for gone in ("John", "DOE", "Doe", "12345678", "2024", "2023", "2022", "Jan", "March"):
        assert gone not in out, gone
    for kept in ("LVEF 55%", "BP 120/80 mmHg", "LVIDd 5.2 cm", "E/A 0.8", "1.5-2.25 mmHg", "TAPSE 18 mm", "1/2/3"):
        assert kept in out, kept
    assert out.count("XXXX") == 12
    assert out.startswith("Patient XXXX XXXX (MRN XXXX) seen on XXXX;")
    assert "XXXX's LVEF" in out


def test_scrub_text_respects_word_boundaries_and_case() -> None:
    out = scrub_text("Ann met ANNA and annotated; ann's id A-77 / a-77x.", names=["Ann"], ids=["A-77"])
    assert out == "XXXX met ANNA and annotated; XXXX's id XXXX / a-77x."
    assert scrub_text("no identity here", names=[], ids=[]) == "no identity here"
