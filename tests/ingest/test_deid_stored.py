"""What ingestion stores — database rows, clip files, reports, logs — carries no identifying value."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from sqlalchemy import select, text

from rag.core.clipfile import read_clip
from rag.core.config import load_config
from rag.ingest.pipeline import ingest
from rag.ingest.ps315 import ATTRIBUTES_BY_TAG, DATE_TIME_TAGS, IDENTIFYING, UID_TAGS
from rag.store import Base, Clip, Patient, StillImage, open_store
from tests.ingest.test_pipeline import make_sample

PSEUDONYM_TAGS = {0x00100010, 0x00100020}  # PatientName, PatientID: replaced by the pseudonym
CLEANED_DESCRIPTORS = {0x00081030, 0x0008103E, 0x00181030}  # Study/Series Description, Protocol Name


def walk(header: dict[str, Any], path: str = "") -> Iterator[tuple[str, int, dict[str, Any]]]:
    """Every element of a DICOM JSON header, recursing into sequences: (path, tag, element)."""
    for key, elem in header.items():
        tag = int(key, 16)
        here = f"{path}/{key}"
        yield here, tag, elem
        if elem.get("vr") == "SQ":
            for i, item in enumerate(elem.get("Value", [])):
                yield from walk(item, f"{here}[{i}]")


def _values(elem: dict[str, Any]) -> list[str]:
    out = []
    for v in elem.get("Value", []):
        out.append(v.get("Alphabetic", "") if isinstance(v, dict) else str(v))
    return [v for v in out if v != ""]


def originals(files: list[Path]) -> dict[str, set[str]]:
    """Identifying values of the source files, by kind."""
    found: dict[str, set[str]] = {"uids": set(), "dates": set(), "text": set()}
    for f in files:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        for elem in ds.iterall():
            if int(elem.tag) not in IDENTIFYING or elem.VR == "SQ" or elem.value in (None, ""):
                continue
            if int(elem.tag) in CLEANED_DESCRIPTORS:
                continue  # kept after cleaning; they must not carry the other values
            value = str(elem.value)
            if elem.VR == "UI":
                found["uids"].add(value)
            elif elem.VR in ("DA", "DT"):
                found["dates"].add(value)
            elif elem.VR in ("PN", "LO", "SH", "ST", "LT") and len(value) > 3:
                found["text"].add(value)
    return found


def test_stored_headers_keep_no_identifying_attribute(
    dicom_dir: Path, tmp_path: Path, workspace: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sample = make_sample(tmp_path, dicom_dir)
    sources = [p for p in sample.rglob("*") if p.is_file() and p.suffix != ".txt"]
    orig = originals(sources)
    assert orig["uids"] and orig["dates"] and orig["text"]  # the check has something to find
    cfg = load_config(ingest={"frames": 4, "size": 32})
    report = ingest([sample], cfg)
    assert report.counts["ingested"] == 5

    store = open_store(cfg.db_url)
    with store.session() as s:
        pseudonyms = {p.pseudonym for p in s.scalars(select(Patient))}
        headers = [c.header for c in s.scalars(select(Clip))] + [i.header for i in s.scalars(select(StillImage))]
        dump = []
        for table in Base.metadata.sorted_tables:
            for row in s.execute(text(f"SELECT * FROM {table.name}")):
                dump.append(" ".join(str(v) for v in row))
        clip_paths = [cfg.media_dir / c.path for c in s.scalars(select(Clip))]
    store.close()

    listed: list[str] = []
    offending: list[str] = []
    for header in headers:
        assert header is not None
        for where, tag, elem in walk(header):
            name = ATTRIBUTES_BY_TAG[tag].keyword if tag in ATTRIBUTES_BY_TAG else f"{tag:08X}"
            listed.append(f"{where} {name}")
            if tag >> 16 & 1:
                offending.append(f"{where} private tag")
            if tag not in IDENTIFYING:
                continue
            values = _values(elem)
            if not values:
                continue  # emptied (Z)
            if tag in UID_TAGS and all(v.startswith("2.25.") and v not in orig["uids"] for v in values):
                continue  # replaced by a keyed-hash UID
            if tag in PSEUDONYM_TAGS and set(values) <= pseudonyms:
                continue
            if tag in DATE_TIME_TAGS and elem["vr"] == "TM":
                continue  # time of day kept (documented): identifies no one without the true date
            if tag in DATE_TIME_TAGS and not set(values) & orig["dates"]:
                continue  # shifted
            if tag in CLEANED_DESCRIPTORS and not any(o in v for v in values for o in orig["text"]):
                continue  # Clean Descriptors Option
            offending.append(f"{where} {name} = {values}")
    assert listed, "no header was stored"
    assert not offending, "identifying attributes left in stored headers:\n" + "\n".join(offending)

    # and no original identifying value anywhere in the database, the clip files or the logs
    blob = "\n".join(dump) + "\n" + caplog.text
    for path in clip_paths:
        _, meta = read_clip(path)
        blob += str(meta)
    leaks = [v for kind in ("uids", "dates", "text") for v in orig[kind] if v in blob]
    assert not leaks, f"original identifying values stored: {leaks}"
    for word in ("DOE", "JANE", "MRN12345", "Springfield", "19500101"):
        assert word not in blob
