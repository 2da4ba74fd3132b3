"""Echo view labels read from DICOM metadata, mapped to the 11 coarse views of EchoPrime.

The label here is the one the source declares (View Code Sequence, View Name or the series
description); the view classifier of the encoder stage predicts views from pixels.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

COARSE_VIEWS: tuple[str, ...] = (
    "A2C",
    "A3C",
    "A4C",
    "A5C",
    "Apical_Doppler",
    "Doppler_Parasternal_Long",
    "Doppler_Parasternal_Short",
    "Parasternal_Long",
    "Parasternal_Short",
    "SSN",
    "Subcostal",
)

# (pattern, view) checked in order; the first match wins. Patterns run on an upper-cased label
# whose punctuation became spaces.
_RULES: tuple[tuple[str, str], ...] = (
    # window first: "SC 4 chamber" is a subcostal view, "SSN" never an apical one
    (r"\b(SSN|SUPRASTERNAL)\b", "SSN"),
    (r"\b(SUBCOSTAL|SUBXIPHOID|SC|SUBC|IVC)\b", "Subcostal"),
    (r"\b(A5C|APICAL 5|AP5|5 ?CH(AMBER)?|FIVE CHAMBER)\b", "A5C"),
    (r"\b(A4C|APICAL 4|AP4|4 ?CH(AMBER)?|FOUR CHAMBER)\b", "A4C"),
    (r"\b(A3C|APICAL 3|AP3|3 ?CH(AMBER)?|THREE CHAMBER|APLAX|APICAL LONG)\b", "A3C"),
    (r"\b(A2C|APICAL 2|AP2|2 ?CH(AMBER)?|TWO CHAMBER)\b", "A2C"),
    (r"\b(PLAX|PS ?LAX|PARASTERNAL LONG|LAX|RVIT|RV INFLOW)\b", "Parasternal_Long"),
    (r"\b(PSAX|PS ?SAX|PARASTERNAL SHORT|SAX|SHORT AXIS)\b", "Parasternal_Short"),
)
_DOPPLER = re.compile(r"\b(DOPPLER|COLOU?R|CFM|CFI|CF|MR|AR|AI|TR|PR|FLOW)\b")


def view_bits(views: Iterable[str]) -> int:
    """A bit mask of views: bit ``i`` stands for ``COARSE_VIEWS[i]`` (names outside it are ignored)."""
    return sum(1 << COARSE_VIEWS.index(v) for v in set(views) if v in COARSE_VIEWS)


def views_of_bits(mask: int) -> frozenset[str]:
    """The views a :func:`view_bits` mask holds."""
    return frozenset(v for i, v in enumerate(COARSE_VIEWS) if mask >> i & 1)


@dataclass(frozen=True)
class ViewLabel:
    """A declared view and where it was read from."""

    view: str
    source: str


def normalise_view(text: str) -> str | None:
    """Map a free-text view description to a coarse view, or ``None`` when nothing matches."""
    label = re.sub(r"[^A-Z0-9 ]+", " ", text.upper())
    label = re.sub(r"\s+", " ", label).strip()
    if not label:
        return None
    if label.replace(" ", "_") in {v.upper() for v in COARSE_VIEWS}:
        return next(v for v in COARSE_VIEWS if v.upper() == label.replace(" ", "_"))
    for pattern, view in _RULES:
        if re.search(pattern, label):
            doppler = bool(_DOPPLER.search(label))
            if doppler and view == "Parasternal_Long":
                return "Doppler_Parasternal_Long"
            if doppler and view == "Parasternal_Short":
                return "Doppler_Parasternal_Short"
            if doppler and view in {"A2C", "A3C", "A4C", "A5C"}:
                return "Apical_Doppler"
            return view
    return None


def view_from_dicom(ds: Any) -> ViewLabel | None:
    """The declared view of a DICOM dataset: View Code Sequence, View Name, then Series Description."""
    code_seq = getattr(ds, "ViewCodeSequence", None)
    if code_seq:
        meaning = str(getattr(code_seq[0], "CodeMeaning", "") or "")
        view = normalise_view(meaning)
        if view:
            return ViewLabel(view, "ViewCodeSequence")
    for keyword in ("ViewName", "SeriesDescription", "ProtocolName"):
        value = str(getattr(ds, keyword, "") or "")
        view = normalise_view(value)
        if view:
            return ViewLabel(view, keyword)
    return None
