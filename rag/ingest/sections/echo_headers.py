"""Echo report headers: the synonym tables, and the scope each header opens.

Anatomical headers (``Left Ventricle``, ``LV``, ``Mitral valve``, combinations such as ``Aortic
root / ascending aorta``, with filler words like "size" or "function" ignored) send the text under
them to their sections. Administrative headers (patient, dates, indication, history, comparison,
technique, quality) send it to Free Text; summary headers (Summary, Conclusion, Impression) and
body headers (Findings, Interpretation) leave each sentence to the classifier. See
:mod:`rag.ingest.sections.echo` for how the scopes are applied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.vocab.sections import (
    AORTA,
    ATRIAL_SEPTUM,
    AV,
    FREE_TEXT,
    IVC,
    LA,
    LV,
    MV,
    PA,
    PERICARDIUM,
    PULMONARY_VEINS,
    PV,
    RA,
    RV,
    TV,
    WALL_MOTION,
)

__all__ = ["FINDING_LIKE_HEADERS", "UNHEADED", "Scope", "header_key", "resolve_header"]

# Header names (lower case, single spaces) for each anatomical section.
_SECTION_HEADERS: dict[str, tuple[str, ...]] = {
    LV: (
        "left ventricle",
        "left ventricular",
        "lv",
        "diastolic function",
        "diastology",
        "lv diastolic function",
        "left ventricular diastolic function",
    ),
    WALL_MOTION: (
        "resting segmental wall motion analysis",
        "segmental wall motion analysis",
        "wall motion analysis",
        "wall motion",
        "regional wall motion",
        "segmental wall motion",
        "lv wall motion",
        "left ventricular wall motion",
        "regional wall motion abnormalities",
    ),
    RV: ("right ventricle", "right ventricular", "rv"),
    LA: ("left atrium", "left atrial", "la"),
    RA: ("right atrium", "right atrial", "ra"),
    ATRIAL_SEPTUM: (
        "atrial septum",
        "interatrial septum",
        "inter-atrial septum",
        "inter atrial septum",
        "ias",
        "atrial septal",
    ),
    MV: ("mitral valve", "mitral", "mv"),
    AV: ("aortic valve", "av", "lvot", "left ventricular outflow tract"),
    TV: ("tricuspid valve", "tricuspid", "tv"),
    PV: ("pulmonic valve", "pulmonary valve", "pulmonic", "pv"),
    PERICARDIUM: ("pericardium", "pericardial", "pericardial effusion"),
    AORTA: (
        "aorta",
        "aortic root",
        "ascending aorta",
        "aortic root and ascending aorta",
        "aortic arch",
        "thoracic aorta",
        "ao",
    ),
    IVC: ("ivc", "inferior vena cava", "systemic veins", "ivc/hepatic veins"),
    PA: (
        "pulmonary artery",
        "pulmonary arteries",
        "pa",
        "pulmonary artery pressure",
        "pulmonary pressures",
        "pulmonary hypertension",
        "pasp",
        "rvsp",
    ),
    PULMONARY_VEINS: ("pulmonary veins", "pulmonary vein", "pulmonary venous flow"),
}

# Header names that are also complete findings when written alone on a line ("Pericardial effusion").
FINDING_LIKE_HEADERS = frozenset(
    {
        "pericardial effusion",
        "wall motion",
        "regional wall motion",
        "segmental wall motion",
        "pulmonary artery pressure",
        "pulmonary hypertension",
        "regional wall motion abnormalities",
    }
)

_ADMIN_HEADERS = frozenset(
    {
        "patient",
        "patient name",
        "name",
        "mrn",
        "medical record number",
        "id",
        "patient id",
        "accession",
        "accession number",
        "dob",
        "date of birth",
        "age",
        "sex",
        "gender",
        "date",
        "study date",
        "exam date",
        "date of study",
        "date of exam",
        "time",
        "height",
        "weight",
        "bsa",
        "body surface area",
        "bp",
        "blood pressure",
        "hr",
        "heart rate",
        "rhythm",
        "location",
        "sonographer",
        "physician",
        "reading physician",
        "interpreting physician",
        "referring physician",
        "ordering physician",
        "cardiologist",
        "performed by",
        "study",
        "study type",
        "exam",
        "exam type",
        "examination",
        "procedure",
        "technique",
        "study quality",
        "image quality",
        "quality",
        "indication",
        "indications",
        "reason",
        "reason for study",
        "reason for exam",
        "reason for examination",
        "clinical history",
        "history",
        "clinical indication",
        "comparison",
        "comparisons",
        "prior study",
        "prior studies",
        "free text",
        "contrast",
    }
)
_SUMMARY_HEADERS = frozenset(
    {
        "summary",
        "conclusion",
        "conclusions",
        "impression",
        "impressions",
        "final impression",
        "overall impression",
        "summary of findings",
    }
)
_BODY_HEADERS = frozenset(
    {
        "findings",
        "finding",
        "echo findings",
        "echocardiographic findings",
        "interpretation",
        "comments",
        "comment",
        "measurements",
        "doppler",
        "m-mode",
        "2d",
        "observations",
        "report",
    }
)
# Words that only describe what a header covers ("Left ventricular systolic function").
_HEADER_FILLERS = frozenset(
    {
        "size",
        "function",
        "systolic",
        "diastolic",
        "structure",
        "morphology",
        "findings",
        "dimensions",
        "dimension",
        "assessment",
        "evaluation",
        "appearance",
        "and",
        "&",
        "the",
    }
)
_HEADER_PARTS = re.compile(r"\s*(?:/|&|,|\+|\band\b)\s*")


@dataclass(frozen=True)
class Scope:
    """Where the sentences under a header go.

    ``sections`` empty: classify each sentence, Free Text when nothing matches. One section: all
    sentences go there. Several: classify, keeping the result only when it is one of them.
    """

    sections: tuple[str, ...] = ()
    summary: bool = False
    anatomic: bool = False
    admin: bool = False


UNHEADED = Scope()
_ADMIN = Scope((FREE_TEXT,), admin=True)
_SUMMARY = Scope(summary=True)

_HEADER_SCOPES: dict[str, Scope] = {
    **{name: _ADMIN for name in _ADMIN_HEADERS},
    **{name: _SUMMARY for name in _SUMMARY_HEADERS},
    **{name: UNHEADED for name in _BODY_HEADERS},
}
_SECTION_BY_HEADER = {name: section for section, names in _SECTION_HEADERS.items() for name in names}


_PARENTHETICAL = re.compile(r"\([^)]*\)")


def header_key(head: str) -> str:
    return " ".join(_PARENTHETICAL.sub(" ", head).strip().strip("#*_:").lower().split())


def _section_for_header(key: str) -> str | None:
    section = _SECTION_BY_HEADER.get(key)
    if section is None:
        kept = [word for word in key.split() if word not in _HEADER_FILLERS]
        section = _SECTION_BY_HEADER.get(" ".join(kept)) if kept else None
    return section


def resolve_header(head: str) -> Scope | None:
    """The scope a header opens, or None when ``head`` is not a known header."""
    key = header_key(head)
    if not key:
        return None
    if key in _HEADER_SCOPES:
        return _HEADER_SCOPES[key]
    parts = [_section_for_header(part) for part in _HEADER_PARTS.split(key)]
    sections = tuple(dict.fromkeys(section for section in parts if section is not None))
    return Scope(sections, anatomic=True) if sections else None
