"""Which studies to draft and what to hold a draft against: the studies an encoder never saw, and a
study's own stored report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rag.store import Store

__all__ = ["ground_truth_text", "held_out_studies"]


def held_out_studies(checkpoint: Path, store: Store, *, latest_only: bool = True) -> list[int]:
    """Studies of the patients a checkpoint's training held out (by default each patient's latest only)."""
    from sqlalchemy import select

    from rag.encoders.checkpoint import read_checkpoint
    from rag.store import Patient, Study

    extra = read_checkpoint(checkpoint).get("extra") or {}
    patients = list(extra.get("val_patients") or [])
    with store.session() as s:
        rows = s.execute(
            select(Study.id, Patient.pseudonym, Study.study_date)
            .join(Patient, Study.patient_id == Patient.id)
            .where(Patient.pseudonym.in_(patients))
            .order_by(Patient.pseudonym, Study.study_date.desc(), Study.id)
        ).all()
    if not latest_only:
        return sorted(int(study_id) for study_id, _, _ in rows)
    latest: dict[str, int] = {}
    for study_id, pseudonym, _ in rows:
        latest.setdefault(str(pseudonym), int(study_id))
    return sorted(latest.values())


def ground_truth_text(store: Store, study_id: int) -> str | None:
    """The study's own stored report text (the reference a draft is compared with)."""
    from sqlalchemy import select

    from rag.store import Report

    with store.session() as s:
        return s.scalar(select(Report.text).where(Report.study_id == study_id).order_by(Report.id))
