"""Wording shared by every part of a report: severity adjectives and adverbs, random choice,
capitalisation, clause joining, date and number formats, and values fixed per patient."""

from __future__ import annotations

import calendar
import datetime as dt
import math
import zlib
from collections.abc import Sequence
from typing import Final, TypeVar

import numpy as np

from rag.simulate.truth import PatientTruth
from rag.vocab.cutoffs import half_up, lvef_grade, tenths

ADJ: Final = ("normal", "mild", "moderate", "severe")
ADV: Final = ("normal", "mildly", "moderately", "severely")
_MONTHS = tuple(calendar.month_name[1:])

_T = TypeVar("_T")


def format_cm(value_cm: float) -> str:
    """A length as written, to 0.1 cm, rounded the same way as the grades are."""
    return f"{tenths(value_cm) / 10:.1f}"


def pick(rng: np.random.Generator, options: Sequence[_T]) -> _T:
    return options[int(rng.integers(len(options)))]


def chance(rng: np.random.Generator, p: float) -> bool:
    return bool(rng.random() < p)


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def stable_unit(patient: PatientTruth, key: str) -> float:
    """A number in [0, 1) fixed for the patient, so a dimension that does not change stays put between studies."""
    return zlib.crc32(f"{patient.patient_id}/{key}".encode()) / 2**32


def join_clauses(clauses: Sequence[str]) -> str:
    if len(clauses) == 1:
        return clauses[0]
    return ", ".join(clauses[:-1]) + " and " + clauses[-1]


DATE_STYLES: Final = 5


def format_date(date: dt.date, style: int) -> str:
    """``date`` in one of the ``DATE_STYLES`` forms readers use (all of which de-identification finds)."""
    month = _MONTHS[date.month - 1]
    if style == 0:
        return date.isoformat()
    if style == 1:
        return f"{date.month:02d}/{date.day:02d}/{date.year}"
    if style == 2:
        return f"{month[:3]} {date.day}, {date.year}"
    if style == 3:
        return f"{date.day} {month} {date.year}"
    return f"{date.day:02d}-{month[:3]}-{date.year}"


def lvef_display(lvef: float, sex: str, rng: np.random.Generator) -> str:
    """The LVEF as a reader writes it: exact, to the nearest 5 %, or a 5 % range, never changing its grade."""
    exact = half_up(lvef)
    form = int(rng.choice(3, p=[0.4, 0.35, 0.25]))
    if form == 1:
        rounded = 5 * half_up(lvef / 5.0)
        if lvef_grade(rounded, sex) == lvef_grade(exact, sex):
            return f"{rounded}%"
    elif form == 2:
        low = 5 * math.floor(lvef / 5.0)
        if lvef_grade(low + 2.5, sex) == lvef_grade(exact, sex):
            return f"{low}{pick(rng, ('-', '-', ' to '))}{low + 5}%"
    return f"{exact}%"
