"""Gather what a generator drafts from: retrieval once per study, the votes, KB passages and clips."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select

from rag.generate.context import DraftContext, KBSearcher
from rag.generate.report import ClipSummary, KBEvidence, Provenance
from rag.store import Clip, Series

if TYPE_CHECKING:
    from rag.retrieve import CaseRetriever, NeighbourVoter, StudyPredictions

__all__ = ["clip_summaries", "gather_context"]


# what each section's KB query asks about, beside the section name and the drafted findings
_SECTION_TOPICS: dict[str, str] = {
    "Left Ventricle": "left ventricular ejection fraction categories size wall thickness",
    "Resting Segmental Wall Motion Analysis": "regional wall motion hypokinesis akinesis",
    "Right Ventricle": "right ventricular size function TAPSE",
    "Left Atrium": "left atrial size volume index",
    "Right Atrium": "right atrial size",
    "Atrial Septum": "interatrial septum",
    "Mitral Valve": "mitral regurgitation grading",
    "Aortic Valve": "aortic stenosis grading peak velocity mean gradient",
    "Tricuspid Valve": "tricuspid regurgitation grading",
    "Pulmonic Valve": "pulmonic valve",
    "Pericardium": "pericardial effusion size",
    "Aorta": "aortic root size",
    "IVC": "IVC diameter collapse right atrial pressure",
    "Pulmonary Artery": "pulmonary artery systolic pressure TR velocity",
    "Pulmonary Veins": "pulmonary venous flow",
}


def clip_summaries(retriever: CaseRetriever, study_id: int) -> list[ClipSummary]:
    studies = retriever.studies
    catalog = retriever.catalog
    rows = np.flatnonzero(studies.clip_study == int(study_id))
    probs = {int(studies.clip_ids[r]): studies.view_probs[r] for r in rows}
    names = studies.views
    with retriever.store.session() as s:
        stored = s.execute(
            select(Clip.id, Clip.path).join(Series, Clip.series_id == Series.id).where(Series.study_id == int(study_id))
        ).all()
    out = []
    for clip_id, path in sorted(stored):
        p = probs.get(int(clip_id))
        best = int(np.argmax(p)) if p is not None else None
        out.append(
            ClipSummary(
                clip_id=int(clip_id),
                path=str(path),
                view=names[best] if best is not None else None,
                view_probability=round(float(p[best]), 4) if p is not None and best is not None else None,
                stored_view=catalog.declared_views.get(int(clip_id)),
            )
        )
    return out


_GRADE_WORDS = ("no", "mild", "moderate", "severe")


def _kb_query(section: str, predictions: StudyPredictions) -> str:
    """What to ask the knowledge base about a section: its topics and the findings the vote predicts.

    Built from a small vocabulary (section, grade words, finding names), so the same questions recur
    from study to study and their embeddings are reused.
    """
    from rag.vocab.findings import PHENOTYPES

    findings = []
    for name, pred in predictions.predictions.items():
        p = PHENOTYPES.get(name)
        if p is None or p.section != section or p.kind != "finding" or pred.grade_probabilities is None:
            continue
        grade = int(np.argmax(pred.grade_probabilities))
        if grade > 0:
            findings.append(f"{_GRADE_WORDS[min(grade, 3)]} {p.description}")
    wanted = "; ".join(findings) if findings else "normal"
    return f"{section}: {_SECTION_TOPICS.get(section, section.lower())}. {wanted}"


def gather_context(
    retriever: CaseRetriever,
    voter: NeighbourVoter,
    study_id: int,
    *,
    k: int = 5,
    kb: KBSearcher | None = None,
    kb_k: int = 2,
    exclude_same_patient: bool = True,
    before_date: dt.date | None = None,
    encoder: str = "",
    generator: str = "",
) -> DraftContext:
    """Retrieve everything a draft of ``study_id`` rests on.

    Args:
        retriever: the case retriever over the store's embeddings.
        voter: the neighbour voter (its own k, typically larger) for measurements and findings.
        k: report sections retrieved per section for the text.
        kb: knowledge base to cite (None: no passages).
        kb_k: passages per section.
        exclude_same_patient: never draw on the patient's own other studies.
        before_date: only studies dated before this (a retrospective draft).
    """
    retrieval = retriever.retrieve(
        study_id, k, exclude_same_patient=exclude_same_patient, before_date=before_date, with_text=True
    )
    predictions = voter.predict(study_id, exclude_same_patient=exclude_same_patient, before_date=before_date)
    from rag.vocab.findings import PHENOTYPES

    hit_grades: dict[int, dict[str, int]] = {}
    for section, hits in retrieval.sections.items():
        findings = [p for p in PHENOTYPES.values() if p.section == section and p.kind == "finding"]
        ids = [h.report_section_id for h in hits]
        for h in hits:
            hit_grades.setdefault(h.report_section_id, {})
        for p in findings:
            for sid, grade in voter.section_grades(ids, p).items():
                hit_grades[sid][p.name] = grade
    kb_hits: dict[str, list[KBEvidence]] = {}
    kb_texts: dict[str, str] = {}
    if kb is not None:
        sections = list(retrieval.sections)
        answers = kb.search_many([_kb_query(s, predictions) for s in sections], k=kb_k)
        for section, found in zip(sections, answers, strict=True):
            kb_hits[section] = [
                KBEvidence(chunk_id=h.chunk_id, source=h.source, heading=h.heading, score=round(float(h.score), 6))
                for h in found
            ]
            kb_texts.update({h.chunk_id: h.text for h in found})
    info = retriever.catalog.study(study_id)
    params = retrieval.params
    provenance = Provenance(
        encoder=encoder,
        embeddings=params.embeddings,
        weights=f"{params.weights}@{params.weights_fingerprint}",
        k=k,
        generator=generator,
        exclude_same_patient=exclude_same_patient,
        before_date=before_date,
        kb_chunks=len(kb_texts),
        created=dt.datetime.now(dt.UTC).replace(microsecond=0),
    )
    return DraftContext(
        study_id=info.study_id,
        patient_pseudonym=info.patient_pseudonym,
        study_date=info.study_date,
        retrieval=retrieval,
        predictions=predictions,
        hit_grades=hit_grades,
        kb=kb_hits,
        kb_texts=kb_texts,
        clips=clip_summaries(retriever, study_id),
        provenance=provenance,
    )
