"""Reports of the Indiana University chest X-ray collection (Open-i), one XML file each.

The XML is parsed with expat and any DOCTYPE is refused, so no entity can be declared or expanded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from xml.etree import ElementTree as ET
from xml.parsers import expat

from rag.core.errors import DecodeError
from rag.ingest.sections.model import CXR_SCHEMA, ParsedReport, assemble, squash
from rag.vocab.sections import CXR_SECTIONS, FREE_TEXT

__all__ = ["IUReport", "parse_iu_xray_xml"]


@dataclass(frozen=True)
class IUReport:
    """One report of the Indiana University chest X-ray collection (Open-i)."""

    report_id: str
    image_ids: tuple[str, ...]
    report: ParsedReport
    mesh_major: tuple[str, ...]
    mesh_automatic: tuple[str, ...] = ()


_IU_LABELS: dict[str, str] = {name: name for name in CXR_SECTIONS}
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


def _reject_doctype(name: str | None, *_: object) -> None:
    raise DecodeError(
        f"IU X-ray report declares a DOCTYPE ({name!r}); declarations and entities are refused "
        "to prevent entity expansion. Remove the DOCTYPE."
    )


def _parse_xml(data: bytes | str) -> ET.Element:
    """Parse XML with expat, refusing any DOCTYPE (and with it every entity declaration)."""
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.StartDoctypeDeclHandler = _reject_doctype
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except expat.ExpatError as error:
        reason = expat.ErrorString(error.code) if error.code is not None else str(error)
        raise DecodeError(
            f"IU X-ray report is not well-formed XML: {reason} at line {error.lineno}, column "
            f"{error.offset}. Check that the file is complete."
        ) from error
    return builder.close()


def _element_text(element: ET.Element) -> str:
    return squash(_HTML_BREAK.sub(" ", "".join(element.itertext())))


def _texts(elements: Iterable[ET.Element]) -> tuple[str, ...]:
    return tuple(text for element in elements if (text := _element_text(element)))


def _iu_report_id(root: ET.Element) -> str:
    uid = root.find("uId")
    report_id = (uid.get("id") or "").strip() if uid is not None else ""
    if not report_id:
        raise DecodeError('IU X-ray report has no <uId id="..."/>; every Open-i report carries one.')
    return report_id


def parse_iu_xray_xml(data: bytes | str) -> IUReport:
    """Parse one report of the Indiana University chest X-ray collection.

    The report's ``<AbstractText Label=...>`` elements become the COMPARISON / INDICATION / FINDINGS
    / IMPRESSION sections (empty ones omitted, an unknown label goes to Free Text; whitespace is
    collapsed and stray ``<BR>`` markup becomes a space); ``uId`` gives the report ID,
    ``parentImage`` the image IDs and ``MeSH/major`` the major MeSH terms.

    Raises:
        DecodeError: the XML is malformed, declares a DOCTYPE, or is not an Open-i report.
    """
    root = _parse_xml(data)
    if root.tag != "eCitation":
        raise DecodeError(f"IU X-ray report root is <{root.tag}>, expected <eCitation>.")
    buckets: dict[str, list[str]] = {}
    for element in root.iter("AbstractText"):
        label = (element.get("Label") or "").strip().upper()
        buckets.setdefault(_IU_LABELS.get(label, FREE_TEXT), []).append(_element_text(element))
    image_ids = tuple(image_id for image in root.iter("parentImage") if (image_id := image.get("id")))
    return IUReport(
        report_id=_iu_report_id(root),
        image_ids=image_ids,
        report=assemble("cxr", CXR_SCHEMA, buckets),
        mesh_major=_texts(root.iterfind("MeSH/major")),
        mesh_automatic=_texts(root.iterfind("MeSH/automatic")),
    )
