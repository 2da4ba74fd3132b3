"""Split free-text reports into named sections.

Echo reports are split into EchoPrime's 15 anatomical sections plus ``Free Text``; chest X-ray
reports into COMPARISON / INDICATION / FINDINGS / IMPRESSION plus ``Free Text``.

This package re-exports the public names of its modules:

- :mod:`~rag.ingest.sections.model`: :class:`ParsedReport`, :class:`ReportSection`, ``ReportKind``;
- :mod:`~rag.ingest.sections.echo`: :func:`parse_echo_report` (the rules for echo reports are in its
  docstring), built on :mod:`~rag.ingest.sections.echo_headers` (header synonyms and scopes) and
  :mod:`~rag.ingest.sections.echo_terms` (the sentence classifier);
- :mod:`~rag.ingest.sections.cxr`: :func:`parse_cxr_report`;
- :mod:`~rag.ingest.sections.iu_xray`: :class:`IUReport`, :func:`parse_iu_xray_xml`;
- :mod:`~rag.ingest.sections.kind`: :func:`detect_report_kind`.

The section names of :mod:`rag.vocab.sections` are re-exported too, for callers that took them
from here.
"""

from __future__ import annotations

from rag.ingest.sections.cxr import parse_cxr_report
from rag.ingest.sections.echo import parse_echo_report
from rag.ingest.sections.iu_xray import IUReport, parse_iu_xray_xml
from rag.ingest.sections.kind import detect_report_kind
from rag.ingest.sections.model import ParsedReport, ReportKind, ReportSection
from rag.vocab.sections import AORTA as AORTA
from rag.vocab.sections import ATRIAL_SEPTUM as ATRIAL_SEPTUM
from rag.vocab.sections import AV as AV
from rag.vocab.sections import CXR_SECTIONS as CXR_SECTIONS
from rag.vocab.sections import ECHO_SECTIONS as ECHO_SECTIONS
from rag.vocab.sections import FREE_TEXT as FREE_TEXT
from rag.vocab.sections import IVC as IVC
from rag.vocab.sections import LA as LA
from rag.vocab.sections import LV as LV
from rag.vocab.sections import MV as MV
from rag.vocab.sections import PA as PA
from rag.vocab.sections import PERICARDIUM as PERICARDIUM
from rag.vocab.sections import PULMONARY_VEINS as PULMONARY_VEINS
from rag.vocab.sections import PV as PV
from rag.vocab.sections import RA as RA
from rag.vocab.sections import RV as RV
from rag.vocab.sections import TV as TV
from rag.vocab.sections import WALL_MOTION as WALL_MOTION

__all__ = [
    "IUReport",
    "ParsedReport",
    "ReportKind",
    "ReportSection",
    "detect_report_kind",
    "parse_cxr_report",
    "parse_echo_report",
    "parse_iu_xray_xml",
]
