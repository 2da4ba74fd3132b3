"""Split free-text reports into named sections.

Echo reports are split into EchoPrime's 15 anatomical sections plus ``Free Text``; chest X-ray
reports into COMPARISON / INDICATION / FINDINGS / IMPRESSION plus ``Free Text``.

Echo reports arrive in three shapes, all handled by :func:`parse_echo_report`:

- headed sections (``Left Ventricle:``, ``LEFT VENTRICLE``, ``LV:``, ``Mitral valve -``,
  ``## Mitral Valve``), with the usual synonyms and abbreviations;
- unheaded prose, classified sentence by sentence by the anatomy the sentence names first;
- EchoPrime's ``"Section: text [SEP] Section: text"`` strings.

Rules worth knowing (each chosen on purpose):

- Text under an anatomical header stays in that section, even when a sentence names another anatomy.
- Administrative headers (patient, dates, indication, history, comparison, technique, quality) go
  to Free Text as a whole: they describe the request or the prior study, not current findings, and
  "r/o pericardial effusion" must not become a Pericardium finding.
- Summary headers (Summary, Conclusion, Impression): when the report also has anatomical headers,
  the summary restates them and goes to Free Text; when it has none, the summary is the only source
  of findings and each sentence is classified like unheaded prose. A sentence is never stored twice.
- The left ventricular outflow tract (LVOT) belongs to Aortic Valve (LVOT velocities and diameter
  feed the aortic valve assessment); the right ventricular outflow tract belongs to Pulmonic Valve.
- RA pressure / right atrial pressure belongs to IVC, from which it is estimated.
- A sentence that names the left ventricle only as the place of a regional wall motion abnormality
  ("The left ventricle shows hypokinesis of the inferior wall") goes to Resting Segmental Wall
  Motion Analysis; one that also speaks of size, thickness or global function stays Left Ventricle.

Section text is the section's sentences in reading order, joined by single spaces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal
from xml.etree import ElementTree as ET
from xml.parsers import expat

from rag.errors import DecodeError

__all__ = [
    "CXR_SECTIONS",
    "ECHO_SECTIONS",
    "FREE_TEXT",
    "IUReport",
    "ParsedReport",
    "ReportKind",
    "ReportSection",
    "detect_report_kind",
    "parse_cxr_report",
    "parse_echo_report",
    "parse_iu_xray_xml",
]

ReportKind = Literal["echo", "cxr"]

ECHO_SECTIONS: tuple[str, ...] = (
    "Left Ventricle",
    "Resting Segmental Wall Motion Analysis",
    "Right Ventricle",
    "Left Atrium",
    "Right Atrium",
    "Atrial Septum",
    "Mitral Valve",
    "Aortic Valve",
    "Tricuspid Valve",
    "Pulmonic Valve",
    "Pericardium",
    "Aorta",
    "IVC",
    "Pulmonary Artery",
    "Pulmonary Veins",
)
FREE_TEXT = "Free Text"
CXR_SECTIONS: tuple[str, ...] = ("COMPARISON", "INDICATION", "FINDINGS", "IMPRESSION")

_ECHO_SCHEMA = (*ECHO_SECTIONS, FREE_TEXT)
_CXR_SCHEMA = (*CXR_SECTIONS, FREE_TEXT)

# Section names as constants (the order of ECHO_SECTIONS).
(
    LV,
    WALL_MOTION,
    RV,
    LA,
    RA,
    ATRIAL_SEPTUM,
    MV,
    AV,
    TV,
    PV,
    PERICARDIUM,
    AORTA,
    IVC,
    PA,
    PULMONARY_VEINS,
) = ECHO_SECTIONS


@dataclass(frozen=True)
class ReportSection:
    """One section of a parsed report.

    ``position`` is the section's index in its schema (``ECHO_SECTIONS`` or ``CXR_SECTIONS``,
    followed by ``FREE_TEXT``), so a section keeps the same position whichever others are present.
    """

    name: str
    text: str
    position: int


@dataclass(frozen=True)
class ParsedReport:
    """A report split into its non-empty sections, in schema order."""

    kind: ReportKind
    sections: tuple[ReportSection, ...]

    def get(self, name: str) -> str | None:
        """Text of section ``name``, or None when the report has no such section."""
        for section in self.sections:
            if section.name == name:
                return section.text
        return None

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the sections present, in schema order."""
        return tuple(section.name for section in self.sections)

    def as_dict(self) -> dict[str, str]:
        """Section name to text, in schema order."""
        return {section.name: section.text for section in self.sections}


@dataclass(frozen=True)
class IUReport:
    """One report of the Indiana University chest X-ray collection (Open-i)."""

    report_id: str
    image_ids: tuple[str, ...]
    report: ParsedReport
    mesh_major: tuple[str, ...]
    mesh_automatic: tuple[str, ...] = ()


def _assemble(kind: ReportKind, schema: tuple[str, ...], buckets: Mapping[str, list[str]]) -> ParsedReport:
    sections = []
    for position, name in enumerate(schema):
        text = " ".join(part for part in buckets.get(name, ()) if part)
        if text:
            sections.append(ReportSection(name=name, text=text, position=position))
    return ParsedReport(kind=kind, sections=tuple(sections))


def _squash(text: str) -> str:
    return " ".join(text.split())


# --------------------------------------------------------------------------------------------------
# Echo vocabulary: what a sentence names, and what a header means.
# --------------------------------------------------------------------------------------------------

# Case-insensitive regex snippets without capturing groups, each starting with a letter (the
# matcher dispatches on it); a space matches spaces or hyphens.
_ECHO_TERMS: dict[str, tuple[str, ...]] = {
    LV: (
        "left ventricles?",
        "left ventricular",
        "left and right ventric(?:les?|ular)",
        "both ventricles",
        "biventricular",
        "lv",
        "lvef",
        "lvid[ds]?",
        "lvedd",
        "lvesd",
        "lvpwd?",
        "ivsd?",
        "lvh",
        "lv mass",
        "ejection fraction",
        "interventricular septum",
        "septal thickness",
        "wall thickness",
        "concentric (?:hypertrophy|remodell?ing)",
        "eccentric (?:hypertrophy|remodell?ing)",
        "hypertrophy",
        "systolic (?:function|dysfunction)",
        "diastolic (?:function|dysfunction)",
        "impaired relaxation",
        "filling pressures?",
        "lv filling pressures?",
        "mitral inflow",
        "e/a(?: ratio)?",
        "e/e(?:'|′|’| prime)?",
        "deceleration time",
        "pseudonormal(?:ization)?",
        "restrictive filling",
        "global longitudinal strain",
        "gls",
        "fractional shortening",
        "cardiomyopathy",
        "apical thrombus",
        "lv thrombus",
        "ventricular thrombus",
    ),
    WALL_MOTION: (
        "wall motion",
        "hypokine(?:sis|tic|sia)",
        "akine(?:sis|tic|sia)",
        "dyskine(?:sis|tic|sia)",
        "regional",
        "segmental",
        *(
            f"{wall} (?:walls?|segments?)"
            for wall in (
                "inferior",
                "anterior",
                "posterior",
                "septal",
                "lateral",
                "apical",
                "inferolateral",
                "anterolateral",
                "inferoseptal",
                "anteroseptal",
            )
        ),
        "antero(?:septal|lateral)",
        "infero(?:septal|lateral)",
        "apical (?:cap|segments?)",
        *(f"{artery} territory" for artery in ("lad", "rca", "lcx", "circumflex")),
    ),
    RV: (
        "right ventricles?",
        "right ventricular",
        "rv",
        "rvh",
        "tapse",
        "tricuspid annular plane systolic excursion",
        "rv fac",
        "fractional area change",
        "rv free wall",
    ),
    LA: (
        "left atri(?:um|al|a)",
        "left and right atri(?:a|al|um)",
        "both atria",
        "biatrial",
        "lavi",
        "left atrial appendage",
        "laa",
    ),
    RA: ("right atri(?:um|al)",),
    ATRIAL_SEPTUM: (
        "atrial septum",
        "inter ?atrial septum",
        "interatrial",
        "atrial septal",
        "atrial septal (?:defect|aneurysm)",
        "ias",
        "pfo",
        "patent foramen ovale",
        "foramen ovale",
        "asd",
        "lipomatous hypertrophy",
        "bubble study",
        "agitated saline",
        "saline contrast",
    ),
    MV: (
        "mitral",
        "mitral valve",
        "mitral annul(?:ar|us) calcification",
        "mvp",
        "mva",
        "mitraclip",
        "mac",
        "chordae",
        "papillary muscles?",
        "systolic anterior motion",
    ),
    AV: (
        "aortic valve",
        "aortic",
        "tricuspid aortic valve",
        "bicuspid",
        "trileaflet",
        "ava",
        "lvot",
        "left ventricular outflow tract",
        "tavr",
        "tavi",
        "savr",
        "transaortic",
    ),
    TV: ("tricuspid", "tricuspid valve"),
    PV: (
        "pulmonic",
        "pulmonic valve",
        "pulmonary valve",
        "pulmonary (?:regurgitation|insufficiency|stenosis)",
        "rvot",
        "right ventricular outflow tract",
    ),
    PERICARDIUM: (
        "pericardi(?:um|al|tis)",
        "effusions?",
        "tamponade",
        "fat pad",
    ),
    AORTA: (
        "aorta",
        "aortic root",
        "aortic arch",
        "aortic sinus(?:es)?",
        "sinus(?:es)? of valsalva",
        "sinotubular junction",
        "aortic (?:dilation|dilatation|dimensions?|size|aneurysm|dissection|coarctation)",
        "coarctation",
        "ao root",
    ),
    IVC: (
        "ivc",
        "inferior vena cava",
        "vena cava",
        "hepatic veins?",
        "ra pressure",
        "right atrial pressure",
        "inspiratory collapse",
        "respiratory (?:variation|collapse)",
        "collapsibility",
        "sniff",
    ),
    PA: (
        "pulmonary arter(?:y|ies)",
        "mpa",
        "pasp",
        "rvsp",
        "spap",
        "pulmonary (?:artery )?(?:systolic )?pressures?",
        "pulmonary hypertension",
        "right ventricular systolic pressure",
        "rv systolic pressure",
        "pulmonary acceleration time",
        "pulmonary vascular resistance",
    ),
    PULMONARY_VEINS: ("pulmonary veins?", "pulmonary venous"),
}

# Case-sensitive abbreviations (two-letter ones collide with English words in lower case).
_ECHO_ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    LV: ("EF",),
    LA: ("LA",),
    RA: ("RA",),
    MV: ("MV", "MR", "MS"),
    AV: ("AV", "AS", "AR", "AI"),
    TV: ("TV", "TR"),
    PV: ("PV", "PR", "PI"),
    IVC: ("RAP",),
    PA: ("PA",),
}

# Abbreviations that are ordinary words when a sentence is written in capitals ("AS", "MS").
_SHOUTED_AMBIGUOUS = frozenset({"AS", "AR", "MS", "PR", "PI", "PA"})


@dataclass(frozen=True)
class _Matcher:
    pattern: re.Pattern[str]
    sections: dict[str, str]

    def first(self, sentence: str) -> str | None:
        match = self.pattern.search(sentence)
        if match is None or match.lastgroup is None:
            return None
        return self.sections[match.lastgroup]


def _phrase(snippet: str) -> str:
    return snippet.replace(" ", r"[\s-]+")


def _build_matcher(skip: frozenset[str]) -> _Matcher:
    """One regex over all terms, dispatched on the first letter so each position tries few terms."""
    entries = [
        (section, snippet, f"(?i:{_phrase(snippet)})")
        for section, snippets in _ECHO_TERMS.items()
        for snippet in snippets
    ]
    entries += [
        (section, abbr, abbr) for section, abbrs in _ECHO_ABBREVIATIONS.items() for abbr in abbrs if abbr not in skip
    ]
    # Longest first, so "right ventricular systolic pressure" wins over "right ventricular".
    entries.sort(key=lambda entry: -len(entry[1]))
    by_letter: dict[str, list[str]] = {}
    sections: dict[str, str] = {}
    for i, (section, snippet, regex) in enumerate(entries):
        if not snippet[0].isalpha():
            raise ValueError(f"Echo term {snippet!r} must start with a letter.")
        by_letter.setdefault(snippet[0].lower(), []).append(f"(?P<t{i}>{regex})")
        sections[f"t{i}"] = section
    branches = "|".join(f"(?=[{letter}{letter.upper()}])(?:{'|'.join(terms)})" for letter, terms in by_letter.items())
    return _Matcher(re.compile(rf"(?<!\w)(?:{branches})(?!\w)"), sections)


_MATCHER = _build_matcher(frozenset())
_SHOUTED_MATCHER = _build_matcher(_SHOUTED_AMBIGUOUS)
_SHOUTED_WORD = re.compile(r"\b[A-Z]{4,}\b")
_REGIONAL = re.compile(r"(?i)(?<!\w)(?:(?:hypo|a|dys)kine\w*|wall[\s-]+motion)(?!\w)")
_LV_GENERAL = re.compile(
    r"(?i)(?<!\w)(?:global(?:ly)?|diffuse(?:ly)?|ejection fraction|lvef|ef|systolic|diastolic|function|size|"
    r"dimensions?|thickness|dilat\w*|hypertroph\w*|cavity|volumes?|mass|thrombus)(?!\w)"
)


def _is_shouted(sentence: str) -> bool:
    return not any(char.islower() for char in sentence) and len(_SHOUTED_WORD.findall(sentence)) >= 2


def _classify(sentence: str) -> str | None:
    """The section whose anatomy the sentence names first, or None."""
    section = (_SHOUTED_MATCHER if _is_shouted(sentence) else _MATCHER).first(sentence)
    if section == LV and _REGIONAL.search(sentence) and not _LV_GENERAL.search(sentence):
        return WALL_MOTION
    return section


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
_FINDING_LIKE_HEADERS = frozenset(
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
class _Scope:
    """Where the sentences under a header go.

    ``sections`` empty: classify each sentence, Free Text when nothing matches. One section: all
    sentences go there. Several: classify, keeping the result only when it is one of them.
    """

    sections: tuple[str, ...] = ()
    summary: bool = False
    anatomic: bool = False
    admin: bool = False


_UNHEADED = _Scope()
_ADMIN = _Scope((FREE_TEXT,), admin=True)
_SUMMARY = _Scope(summary=True)

_HEADER_SCOPES: dict[str, _Scope] = {
    **{name: _ADMIN for name in _ADMIN_HEADERS},
    **{name: _SUMMARY for name in _SUMMARY_HEADERS},
    **{name: _UNHEADED for name in _BODY_HEADERS},
}
_SECTION_BY_HEADER = {name: section for section, names in _SECTION_HEADERS.items() for name in names}


_PARENTHETICAL = re.compile(r"\([^)]*\)")


def _header_key(head: str) -> str:
    return " ".join(_PARENTHETICAL.sub(" ", head).strip().strip("#*_:").lower().split())


def _section_for_header(key: str) -> str | None:
    section = _SECTION_BY_HEADER.get(key)
    if section is None:
        kept = [word for word in key.split() if word not in _HEADER_FILLERS]
        section = _SECTION_BY_HEADER.get(" ".join(kept)) if kept else None
    return section


def _resolve_header(head: str) -> _Scope | None:
    """The scope a header opens, or None when ``head`` is not a known header."""
    key = _header_key(head)
    if not key:
        return None
    if key in _HEADER_SCOPES:
        return _HEADER_SCOPES[key]
    parts = [_section_for_header(part) for part in _HEADER_PARTS.split(key)]
    sections = tuple(dict.fromkeys(section for section in parts if section is not None))
    return _Scope(sections, anatomic=True) if sections else None


def _assign(sentence: str, scope: _Scope, report_has_anatomic_headers: bool) -> str:
    if scope.summary and report_has_anatomic_headers:
        return FREE_TEXT
    if len(scope.sections) == 1:
        return scope.sections[0]
    found = _classify(sentence)
    if not scope.sections:
        return found or FREE_TEXT
    return found if found in scope.sections else scope.sections[0]


# --------------------------------------------------------------------------------------------------
# Echo scanning: lines, headers, sentences.
# --------------------------------------------------------------------------------------------------

_SEP = re.compile(r"\s*\[SEP\]\s*", re.IGNORECASE)
_WRAPPED = re.compile(r"(?<=[a-z,])[ \t]*\r?\n[ \t]*(?=[a-z])")
_BULLET = re.compile(r"^(?:[-*•·▪]|\d{1,2}[.)])\s+")
_MARKDOWN_HEADING = re.compile(r"^#{1,6}\s*(?P<head>.*?)\s*#*$")
_HEAD_COLON = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9 '’/&,()+-]{0,59}?)\s*:\s*(?P<rest>.*)$", re.S)
_HEAD_DASH = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9 '’/&,()+]{0,59}?)\s+[-–—]\s+(?P<rest>.*)$", re.S)
_SENTENCE_BREAK = re.compile(r"(?<=;)\s+|(?<=[.!?])\s+(?=[^a-z\s])")
_TERMINAL_PUNCTUATION = (".", "!", "?", ";")


def _sentences(line: str) -> list[str]:
    return [part for part in (_squash(piece) for piece in _SENTENCE_BREAK.split(line)) if part]


class _EchoScanner:
    """Walks a report line by line and records (sentence, scope) pairs in reading order."""

    def __init__(self) -> None:
        self.pieces: list[tuple[str, _Scope]] = []
        self.saw_anatomic_header = False
        self._scope = _UNHEADED
        self._scope_has_text = False
        self._line_only = False

    def feed(self, text: str) -> None:
        text = _WRAPPED.sub(" ", _SEP.sub("\n", text))
        for raw_line in text.splitlines():
            self._feed_line(raw_line)

    def _enter(self, scope: _Scope, *, line_only: bool = False) -> None:
        self._scope = scope
        self._scope_has_text = False
        self._line_only = line_only
        self.saw_anatomic_header = self.saw_anatomic_header or scope.anatomic

    def _feed_line(self, raw_line: str) -> None:
        line = _BULLET.sub("", raw_line.replace("**", "").replace("__", "").strip())
        if not line:
            if self._scope_has_text:
                self._enter(_UNHEADED)
            return
        if self._heading_line(line):
            return
        for index, sentence in enumerate(_sentences(line)):
            self._feed_sentence(sentence, first=index == 0)
        if self._line_only:
            self._enter(_UNHEADED)

    def _heading_line(self, line: str) -> bool:
        """Consume a line that is only a header (markdown, or a known header alone); True if consumed."""
        markdown = _MARKDOWN_HEADING.match(line)
        if markdown is not None:
            self._enter(_resolve_header(markdown["head"]) or _UNHEADED)
            return True
        if line.endswith(_TERMINAL_PUNCTUATION):
            return False
        scope = _resolve_header(line)
        if scope is None:
            return False
        key = _header_key(line)
        if key in _FINDING_LIKE_HEADERS and not line.endswith(":") and not line.isupper():
            return False
        self._enter(scope)
        if scope.admin:
            self._record(line)
        return True

    def _feed_sentence(self, sentence: str, *, first: bool) -> None:
        match = _HEAD_COLON.match(sentence) or (_HEAD_DASH.match(sentence) if first else None)
        if match is not None:
            scope = _resolve_header(match["head"])
            if scope is not None:
                rest = match["rest"].strip()
                self._enter(scope, line_only=scope.admin and bool(rest))
                if not scope.admin:  # administrative lines keep their label in Free Text
                    sentence = rest
        if sentence:
            self._record(sentence)

    def _record(self, sentence: str) -> None:
        self.pieces.append((sentence, self._scope))
        self._scope_has_text = True


def parse_echo_report(text: str) -> ParsedReport:
    """Split an echo report into EchoPrime's anatomical sections plus Free Text.

    Sections come in ``ECHO_SECTIONS`` order, then Free Text; empty ones are omitted. Within a
    section, sentences keep their reading order. See the module docstring for the rules.
    """
    scanner = _EchoScanner()
    scanner.feed(text)
    buckets: dict[str, list[str]] = {}
    for sentence, scope in scanner.pieces:
        section = _assign(sentence, scope, scanner.saw_anatomic_header)
        buckets.setdefault(section, []).append(sentence)
    return _assemble("echo", _ECHO_SCHEMA, buckets)


# --------------------------------------------------------------------------------------------------
# Chest X-ray reports.
# --------------------------------------------------------------------------------------------------

_CXR_HEADINGS: dict[str, str] = {
    "comparison": "COMPARISON",
    "comparisons": "COMPARISON",
    "indication": "INDICATION",
    "indications": "INDICATION",
    "clinical indication": "INDICATION",
    "clinical history": "INDICATION",
    "history": "INDICATION",
    "reason for exam": "INDICATION",
    "reason for examination": "INDICATION",
    "reason for study": "INDICATION",
    "findings": "FINDINGS",
    "finding": "FINDINGS",
    "impression": "IMPRESSION",
    "impressions": "IMPRESSION",
    "conclusion": "IMPRESSION",
    "conclusions": "IMPRESSION",
    # Other headings end the previous section; their text is kept as Free Text.
    "technique": FREE_TEXT,
    "examination": FREE_TEXT,
    "exam": FREE_TEXT,
    "procedure": FREE_TEXT,
    "notification": FREE_TEXT,
    "recommendation": FREE_TEXT,
    "recommendations": FREE_TEXT,
    "addendum": FREE_TEXT,
    "final report": FREE_TEXT,
}


def _cxr_heading_pattern() -> re.Pattern[str]:
    names = sorted(_CXR_HEADINGS, key=len, reverse=True)
    spaced = "|".join(name.replace(" ", r"[ \t]+") for name in names)
    upper = "|".join(name.upper().replace(" ", r"[ \t]+") for name in names)
    line_start = rf"^[ \t]*(?P<line>(?i:{spaced}))[ \t]*(?::|(?=[ \t]*(?:\r?\n|\Z)))"
    inline = rf"(?<=[\s.])(?P<inline>{upper})[ \t]*:"
    return re.compile(rf"{line_start}|{inline}", re.MULTILINE)


_CXR_HEADING = _cxr_heading_pattern()


def parse_cxr_report(text: str) -> ParsedReport:
    """Split a plain-text chest X-ray report on its headings.

    Headings (case-insensitive at the start of a line, colon optional when alone on the line; in
    capitals with a colon anywhere): COMPARISON; INDICATION (also CLINICAL HISTORY, HISTORY, REASON
    FOR EXAM); FINDINGS; IMPRESSION (also CONCLUSION). Text before the first heading and under other
    headings (TECHNIQUE, EXAMINATION, NOTIFICATION, ...) goes to Free Text. Whitespace is collapsed;
    a heading that appears twice has its texts joined.
    """
    buckets: dict[str, list[str]] = {}
    section, start = FREE_TEXT, 0
    for match in _CXR_HEADING.finditer(text):
        buckets.setdefault(section, []).append(_squash(text[start : match.start()]))
        heading = match["line"] or match["inline"]
        section = _CXR_HEADINGS[" ".join(heading.lower().split())]
        start = match.end()
    buckets.setdefault(section, []).append(_squash(text[start:]))
    return _assemble("cxr", _CXR_SCHEMA, buckets)


# --------------------------------------------------------------------------------------------------
# Indiana University (Open-i) XML reports.
# --------------------------------------------------------------------------------------------------

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
    return _squash(_HTML_BREAK.sub(" ", "".join(element.itertext())))


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
        report=_assemble("cxr", _CXR_SCHEMA, buckets),
        mesh_major=_texts(root.iterfind("MeSH/major")),
        mesh_automatic=_texts(root.iterfind("MeSH/automatic")),
    )


# --------------------------------------------------------------------------------------------------
# Which kind of report is this?
# --------------------------------------------------------------------------------------------------

_ECHO_CUES = re.compile(
    r"(?i)(?<!\w)(?:ventric\w*|atri(?:um|al|a)|mitral|tricuspid|pulmonic|aortic valve|ejection fraction|"
    r"lvef|lv|rv|regurgita\w*|stenosis|pericardi\w*|echocardiogra\w*|doppler|ivc|inferior vena cava|"
    r"wall motion|(?:hypo|a|dys)kine\w*|diastolic|systolic|tapse|rvsp|pasp|valve|septum|lvot)(?!\w)"
)
_CXR_CUES = re.compile(
    r"(?i)(?<!\w)(?:lungs?|pleural|pneumothora\w*|consolidation|opacit\w*|atelecta\w*|airspace|"
    r"mediastin\w*|cardiomediastinal|cardiac silhouette|costophrenic|hil(?:a|um|ar)|radiograph\w*|"
    r"x-?ray|chest|ribs?|osseous|bony|granulomas?|hemidiaphragms?|diaphragm|thora\w*|lobes?|"
    r"pulmonary (?:edema|vascularity|nodules?)|infiltrates?|pa and lateral|pneumonia|cardiopulmonary|"
    r"cardiomegaly|heart size|edema|scoliosis|kyphosis|spine|spondyl\w*|vertebra\w*|nodules?|masses|"
    r"interstitial|emphysema|copd|sternotomy|hyperinflat\w*|hyperexpan\w*|tb|tuberculosis|cough)(?!\w)"
)


def detect_report_kind(text: str) -> ReportKind:
    """Guess whether ``text`` is an echo or a chest X-ray report.

    Counts cardiac-echo cue words against chest-radiograph cue words; "cxr" only when the radiograph
    cues outnumber the echo cues, so an empty or cue-less text is "echo".
    """
    echo = len(_ECHO_CUES.findall(text))
    cxr = len(_CXR_CUES.findall(text))
    return "cxr" if cxr > echo else "echo"
