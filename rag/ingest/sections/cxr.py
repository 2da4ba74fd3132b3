"""Split plain-text chest X-ray reports on their headings (COMPARISON, INDICATION, FINDINGS, IMPRESSION)."""

from __future__ import annotations

import re

from rag.ingest.sections.model import CXR_SCHEMA, ParsedReport, assemble, squash
from rag.vocab.sections import FREE_TEXT

__all__ = ["parse_cxr_report"]

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
        buckets.setdefault(section, []).append(squash(text[start : match.start()]))
        heading = match["line"] or match["inline"]
        section = _CXR_HEADINGS[" ".join(heading.lower().split())]
        start = match.end()
    buckets.setdefault(section, []).append(squash(text[start:]))
    return assemble("cxr", CXR_SCHEMA, buckets)
