"""The Basic Application Level Confidentiality Profile of DICOM, as data.

PS3.15 Annex E, Table E.1-1 ("Application Level Confidentiality Profile Attributes") lists every
standard attribute that may identify a patient, another person or an organisation, with the action
that the Basic Profile prescribes for it. This module holds the column of Basic Profile actions for
each attribute of the 2024b edition of the table, keyed by tag, with the keyword and VR of the
attribute as pydicom's data dictionary gives them. The rows live in the package data file
``rag/ingest/data/ps315.csv`` (columns ``group,element,keyword,vr,action``, tags in hexadecimal,
sorted by tag), read once on import.

Action codes (PS3.15 E.1.1):

- ``D``: replace with a non-zero length dummy value consistent with the VR.
- ``Z``: replace with a zero length value (or a dummy value consistent with the VR).
- ``X``: remove.
- ``K``: keep (non-sequence attributes unchanged, sequences cleaned).
- ``C``: clean, i.e. replace with values of similar meaning known not to identify.
- ``U``: replace with a non-zero length UID, consistent within a set of instances.
- ``Z/D``, ``X/Z``, ``X/D``, ``X/Z/D``: the first unless the next is needed for the IOD to stay
  conformant (Type 3 versus Type 2 versus Type 1).
- ``X/Z/U*``: remove, unless an empty sequence or one whose instance UIDs are replaced is needed.

Three rows of the table are not single attributes and are kept apart: private attributes (odd
groups, ``X``), Curve Data (repeating groups ``50xx``, ``X``) and Overlay Data and Overlay Comments
(``60xx,3000`` and ``60xx,4000``, ``X``); see `PRIVATE_ACTION` and `repeating_group_action`.

Constants:

- `ATTRIBUTES`: every row, sorted by tag.
- `ACTIONS`: tag (as an int, ``group << 16 | element``) to Basic Profile action.
- `IDENTIFYING`: tags whose action is anything but ``K`` (all of them in this edition).
- `UID_TAGS`: tags whose action is ``U``.
- `DATE_TIME_TAGS`: tags of VR DA, DT or TM.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources
from typing import Final, Literal, cast, get_args

__all__ = [
    "ACTIONS",
    "ATTRIBUTES",
    "ATTRIBUTES_BY_TAG",
    "DATE_TIME_TAGS",
    "EDITION",
    "IDENTIFYING",
    "PRIVATE_ACTION",
    "UID_TAGS",
    "Action",
    "ProfileAttribute",
    "repeating_group_action",
]

EDITION: Final = "2024b"

Action = Literal["D", "Z", "X", "K", "C", "U", "Z/D", "X/Z", "X/D", "X/Z/D", "X/Z/U*"]


@dataclass(frozen=True, slots=True)
class ProfileAttribute:
    """One row of Table E.1-1: an attribute and its Basic Profile action."""

    group: int
    element: int
    keyword: str
    vr: str
    action: Action

    @property
    def tag(self) -> int:
        """The tag as one int, ``group << 16 | element`` (what pydicom's ``Tag`` compares equal to)."""
        return (self.group << 16) | self.element


_DATA_FILE: Final = "ps315.csv"
_COLUMNS: Final = ("group", "element", "keyword", "vr", "action")
_ACTION_CODES: Final[frozenset[str]] = frozenset(get_args(Action))


def _parse_row(line: int, row: dict[str, str]) -> ProfileAttribute:
    action = row["action"]
    if action not in _ACTION_CODES:
        raise ValueError(f"{_DATA_FILE} line {line}: unknown Basic Profile action {action!r}.")
    return ProfileAttribute(
        group=int(row["group"], 16),
        element=int(row["element"], 16),
        keyword=row["keyword"],
        vr=row["vr"],
        action=cast(Action, action),
    )


@functools.cache
def _load_attributes() -> tuple[ProfileAttribute, ...]:
    """The rows of ``data/ps315.csv`` in file order (sorted by tag), read once."""
    text = (resources.files("rag.ingest") / "data" / _DATA_FILE).read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != _COLUMNS:
        raise ValueError(f"{_DATA_FILE} must have the columns {','.join(_COLUMNS)}, got {reader.fieldnames}.")
    rows = tuple(_parse_row(line, row) for line, row in enumerate(reader, start=2))
    if [a.tag for a in rows] != sorted({a.tag for a in rows}):
        raise ValueError(f"{_DATA_FILE} must be sorted by tag without duplicates.")
    return rows


ATTRIBUTES: Final[tuple[ProfileAttribute, ...]] = _load_attributes()
ATTRIBUTES_BY_TAG: Final[dict[int, ProfileAttribute]] = {a.tag: a for a in ATTRIBUTES}
ACTIONS: Final[dict[int, str]] = {a.tag: a.action for a in ATTRIBUTES}
IDENTIFYING: Final[frozenset[int]] = frozenset(a.tag for a in ATTRIBUTES if a.action != "K")
UID_TAGS: Final[frozenset[int]] = frozenset(a.tag for a in ATTRIBUTES if a.action == "U")
DATE_TIME_TAGS: Final[frozenset[int]] = frozenset(a.tag for a in ATTRIBUTES if a.vr in ("DA", "DT", "TM"))

PRIVATE_ACTION: Final[Action] = "X"
"""Action of the table's "Private attributes" row: every element of an odd group is removed."""


def repeating_group_action(tag: int) -> Action | None:
    """Action for the table's repeating-group rows, or None when ``tag`` is not one of them.

    Curve Data is the whole of the retired groups 5000-501E (even); Overlay Data and Overlay
    Comments are elements 3000 and 4000 of the overlay groups 6000-601E (even).
    """
    group, element = tag >> 16, tag & 0xFFFF
    if 0x5000 <= group <= 0x501E and group % 2 == 0:
        return "X"
    if 0x6000 <= group <= 0x601E and group % 2 == 0 and element in (0x3000, 0x4000):
        return "X"
    return None
