"""Free-text scrubbing: dates, and the names and IDs a caller hands in.

`scrub_text` is the building block: it masks dates in the common written forms and the whole-word
occurrences of given name parts and IDs. `scrub_report_text` is what report ingestion applies: the
values of labelled identifying fields (`rag.ingest.labelled_fields`), the patient's identifying tokens
known only by their keyed hashes (`rag.ingest.identifiers`), then dates.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import Final

from rag.ingest.identifiers import scrub_identifiers
from rag.ingest.labelled_fields import scrub_labelled_fields
from rag.ingest.pseudonym import Pseudonymizer

__all__ = ["TextScrubber", "scrub_report_text", "scrub_text"]

# --- dates ---------------------------------------------------------------------------

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

_MIN_NAME_PART = 2
_MIN_ID = 3


class TextScrubber:
    """Finds given name parts, IDs and dates in text (also cleans DICOM descriptors)."""

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
    return TextScrubber(names, ids).scrub(text, "XXXX")


def scrub_report_text(text: str, pz: Pseudonymizer, identifier_hashes: Collection[str]) -> str:
    """Report text as it may be stored.

    1. Values of labelled identifying fields ("Patient Name: ...", "MRN: ...", "DOB: ...", referring
       physician, address, phone ...) become ``[REMOVED]``, whoever the patient is.
    2. Words whose keyed hash (`Pseudonymizer.token_hash`) is one of ``identifier_hashes`` (the
       patient's name parts and IDs, from DICOM headers of this or an earlier run) become ``XXXX``.
    3. Dates become ``XXXX`` (see `scrub_text`).
    """
    text = scrub_labelled_fields(text)
    text = scrub_identifiers(text, pz, identifier_hashes)
    return TextScrubber((), ()).scrub(text, "XXXX")
