"""Report scrubbing, layer 1: the values of labelled identifying fields, whoever the patient is.

A field is a label, ``:`` or ``=`` (or a label ending in ``#``, such as ``MRN#``), and a value. The
labels recognised, case-insensitively, are those of the patient's name (Patient Name, Name,
Patient, First/Last Name, Surname), record numbers (MRN, MR #, Medical Record Number, Patient ID,
ID, Hospital Number, NHS Number, SSN), date of birth (DOB, Date of Birth, Birth Date), accession
number, address and postal code, referring / performing / reading / interpreting / ordering /
attending physician (also "Referred by", "Read by", "Signed by" ...), sonographer and technologist,
phone, fax and e-mail. A label must start a word; the bare words Name, ID, Patient, Address, Phone
and Physician must not follow another word on the line ("Protocol Name:" is not a name field).

The value, replaced by ``[REMOVED]`` (the label stays, so the report keeps its structure), runs from
the separator to the first of: the end of the line, ``|``, ``;``, a tab, two spaces, the next label
(identifying or a common header label such as Age, Sex, Date, HR, Indication), or the end of a
sentence (a period after a word of three or more letters, not a title such as "Mrs.", then a
capital). A record-number label followed by a word with a digit and no separator ("MRN 1234567")
loses that word too. Nothing else is touched: "Left Ventricle: ..." and "MR: mild" stay as written.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["PLACEHOLDER", "scrub_labelled_fields"]

PLACEHOLDER: Final = "[REMOVED]"

_NUM = r"(?:number|num\.?|no\.?|#)"
_BARE = r"(?<![^\W\d_][\x20\t])"  # a bare word label may not follow another word on the line
_IDENTIFYING: Final[tuple[str, ...]] = (
    # name
    r"patient(?:'s|’s)? (?:full |last |first |given |family |middle )?name",
    r"pt\.? name",
    r"(?:full |last |first |given |family |middle |maiden )name",
    r"surname",
    rf"{_BARE}name",
    rf"{_BARE}patient",
    # record numbers and IDs
    rf"medical record {_NUM}",
    rf"med\.? rec(?:ord|\.)?(?: {_NUM}|[\x20\t]*#)?",
    r"mrn(?:[\x20\t]*#)?",
    r"mr(?:[\x20\t]*#| no\.?| number)",
    r"patient (?:id(?:entifier)?|number|no\.?)(?:[\x20\t]*#)?",
    rf"(?:hospital|unit|nhs|chart) (?:id|{_NUM})",
    rf"social security {_NUM}",
    r"ssn",
    rf"{_BARE}id(?:[\x20\t]*#)?",
    # date of birth
    r"date of birth",
    r"birth ?date",
    r"d\.?o\.?b\.?",
    # accession number
    rf"accession(?: {_NUM}|[\x20\t]*#)?",
    r"acc(?:[\x20\t]*#| no\.?| number)",
    # address
    r"(?:home |patient |street |mailing )?address(?: line ?\d)?",
    r"zip(?: code)?",
    r"post ?code",
    # physicians and staff
    r"(?:referring|referred|performing|reading|interpreting|ordering|attending|requesting|consulting"
    r"|primary care) (?:physician|doctor|dr\.?|provider|clinician|cardiologist|consultant|md)",
    r"referring",
    r"referrer",
    r"(?:referred|read|interpreted|performed|reported|dictated|reviewed|verified|confirmed|approved|signed"
    r"|electronically signed) by",
    rf"{_BARE}physician",
    r"cardiologist",
    r"sonographer(?: name)?",
    r"(?:echo |cardiac )?(?:technologist|technician|tech)",
    # contact
    rf"{_BARE}(?:telephone|phone|tel|mobile|cell phone|fax)(?: {_NUM})?",
    r"e-?mail(?: address)?",
)
# Common header labels that are not identifying: they only end the value of a field before them.
_OTHER: Final[tuple[str, ...]] = (
    r"age",
    r"sex",
    r"gender",
    r"(?:exam |study |procedure |visit |service |report |admission )?date(?: of (?:exam|study|service|procedure))?",
    r"time",
    r"height",
    r"weight",
    r"ht",
    r"wt",
    r"bsa",
    r"bmi",
    r"hr",
    r"heart rate",
    r"bp",
    r"blood pressure",
    r"rhythm",
    r"location",
    r"ward",
    r"room",
    r"bed",
    r"indications?",
    r"reason(?: for (?:study|exam|referral))?",
    r"study",
    r"exam",
    r"procedure",
    r"modality",
    r"(?:image )?quality",
    r"comparison",
    r"(?:clinical )?history",
    r"findings",
    r"impressions?",
    r"conclusions?",
    r"summary",
    r"status",
    r"priority",
    r"department",
    r"institution",
    r"hospital",
    r"facility",
)
_SEP = r"[ \t]*(?:[:=]|(?<=#))"


def _alternation(labels: tuple[str, ...]) -> str:
    return "|".join(label.replace(" ", r"[\x20\t]+") for label in labels)


_LABEL: Final = re.compile(rf"(?<![\w-])(?:{_alternation(_IDENTIFYING)}){_SEP}[ \t]*", re.IGNORECASE)
_NEXT_LABEL: Final = re.compile(
    rf"[ \t]+(?=(?:{_alternation(_IDENTIFYING + _OTHER)}){_SEP})",
    re.IGNORECASE,
)
_SEGMENT_END: Final = re.compile(r"[\r\n|;\t]| {2,}")
_SENTENCE_END: Final = re.compile(r"(?<=[^\W\d_]{3})\.(?=[ \t]+[A-Z])")
_WORD_BEFORE: Final = re.compile(r"([^\W\d_]+)$")
_TITLES: Final = frozenset({"mrs", "miss", "prof", "rev", "hon", "sen", "dott", "sra", "srta"})
_BARE_ID: Final = re.compile(
    r"(?<![\w-])(?:mrn|mr[ \t]*#|medical[ \t]+record[ \t]+(?:number|no\.?)|patient[ \t]+id"
    r"|(?:hospital|nhs)[ \t]+(?:number|no\.?)|accession(?:[ \t]+(?:number|no\.?))?|acc[ \t]*#)"
    r"(?:[ \t]*#[ \t]*|[ \t]+)(?=[\w\-/.]*\d)(?P<value>[^\W_](?:[\w\-/.]*\w)?)",
    re.IGNORECASE,
)


def _value_end(text: str, start: int) -> int:
    """Where the value that starts at ``start`` ends (see the module docstring)."""
    seg = _SEGMENT_END.search(text, start)
    end = seg.start() if seg else len(text)
    nxt = _NEXT_LABEL.search(text, start, end)
    if nxt is not None:
        end = nxt.start()
    for m in _SENTENCE_END.finditer(text, start, end):
        word = _WORD_BEFORE.search(text, start, m.start())
        if word is None or word.group(1).casefold() not in _TITLES:
            return m.start()
    return end


def scrub_labelled_fields(text: str) -> str:
    """``text`` with the values of its labelled identifying fields replaced by ``[REMOVED]``."""
    out: list[str] = []
    pos = 0
    while (m := _LABEL.search(text, pos)) is not None:
        start = m.end()
        out.append(text[pos:start])
        if text.startswith(PLACEHOLDER, start):  # scrubbed before
            out.append(PLACEHOLDER)
            pos = start + len(PLACEHOLDER)
            continue
        value = text[start : _value_end(text, start)].rstrip(" \t.,")
        if value:
            out.append(PLACEHOLDER)
        pos = start + len(value)
    out.append(text[pos:])
    return _BARE_ID.sub(lambda m: m.group(0)[: m.start("value") - m.start()] + PLACEHOLDER, "".join(out))
