"""Which study a study is compared with, and what a report says about its own prior.

The prior is the same (pseudonymised) patient's most recent earlier study. Dates are shifted per
patient at ingestion, so order and intervals survive de-identification; two studies on one day are
ordered by when they were stored.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rag.core.errors import UnknownStudyError

if TYPE_CHECKING:
    from rag.store import Store

__all__ = ["PriorLookup", "comparison_text", "find_prior", "patient_studies"]

_COMPARISON = re.compile(r"^\s*comparison\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class PriorLookup:
    """The study, its prior (or None) and why there is none."""

    study_id: int
    study_date: dt.date | None
    prior_id: int | None
    prior_date: dt.date | None
    reason: str = ""


def patient_studies(store: Store, study_id: int) -> list[tuple[int, dt.date | None]]:
    """(study ID, date) of every study of ``study_id``'s patient, oldest first (undated last).

    Raises:
        UnknownStudyError: the study is not stored.
    """
    from sqlalchemy import select

    from rag.store import Study

    with store.session() as s:
        patient = s.scalar(select(Study.patient_id).where(Study.id == int(study_id)))
        if patient is None:
            raise UnknownStudyError(f"study {study_id} is not in the case store: check the ID (`rag cases list`)")
        rows = s.execute(select(Study.id, Study.study_date).where(Study.patient_id == patient)).all()
    far = dt.date.max
    return sorted(((int(i), d) for i, d in rows), key=lambda r: (r[1] or far, r[0]))


def find_prior(store: Store, study_id: int) -> PriorLookup:
    """The patient's most recent study before ``study_id``; ``prior_id`` None with the reason when none."""
    studies = patient_studies(store, study_id)
    date = dict(studies)[int(study_id)]
    if date is None:
        return PriorLookup(int(study_id), None, None, None, "the study has no date, so no earlier study can be named")
    earlier = [(i, d) for i, d in studies if d is not None and (d, i) < (date, int(study_id))]
    if not earlier:
        others = len(studies) - 1
        why = "the patient has no other stored study" if not others else "the patient has no earlier stored study"
        return PriorLookup(int(study_id), date, None, None, why)
    prior, prior_date = earlier[-1]
    return PriorLookup(int(study_id), date, prior, prior_date)


def comparison_text(report_text: str | None) -> str:
    """A report's own comparison line ("Comparison: ...") or ""."""
    if not report_text:
        return ""
    found = _COMPARISON.search(report_text)
    return found.group(1) if found else ""
