"""What a generator drafts from: the study's retrieved cases, neighbour votes, KB passages and clips.

:func:`gather_context` runs retrieval once per study; every generator reads the same
:class:`DraftContext`, and :func:`assemble_report` turns drafted sections plus the context into a
:class:`~rag.draft.report.Report` with measurements, findings, clips, neighbours and provenance.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
from sqlalchemy import select

from rag.draft.report import (
    CaseEvidence,
    ClipSummary,
    FindingDraft,
    KBEvidence,
    MeasurementDraft,
    Neighbour,
    NeighbourCase,
    Provenance,
    Report,
    SectionDraft,
)
from rag.ingest.sections import ECHO_SECTIONS
from rag.store import Clip, Series

if TYPE_CHECKING:
    from rag.retrieve import CaseRetriever, NeighbourVoter, SectionHit, StudyPredictions, StudyRetrieval

__all__ = ["DraftContext", "KBHitLike", "KBSearcher", "assemble_report", "gather_context"]


class KBHitLike(Protocol):
    """A knowledge-base hit as :class:`rag.kb.KBHit` gives it."""

    @property
    def chunk_id(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def heading(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def score(self) -> float: ...


class KBSearcher(Protocol):
    """Anything that searches knowledge-base passages (:class:`rag.kb.KnowledgeBase`)."""

    def search_many(self, queries: Sequence[str], k: int = 5) -> Sequence[Sequence[KBHitLike]]: ...


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


@dataclass(frozen=True)
class DraftContext:
    """Everything retrieved for one study, shared by all generators.

    Attributes:
        retrieval: the k nearest report sections of other studies, per section.
        predictions: neighbour-vote measurements and findings (each from its own section).
        hit_grades: report section ID of every hit -> {finding name: grade stated in that text}.
        kb: section -> knowledge-base passages about it (empty without a KB).
        clips: the study's clips with predicted views.
        provenance: encoder, embeddings, weights, k; the generator fills in its own name.
    """

    study_id: int
    patient_pseudonym: str
    study_date: dt.date | None
    retrieval: StudyRetrieval
    predictions: StudyPredictions
    hit_grades: dict[int, dict[str, int]]
    kb: dict[str, list[KBEvidence]]
    kb_texts: dict[str, str]
    clips: list[ClipSummary]
    provenance: Provenance
    warnings: list[str] = field(default_factory=list)

    @property
    def voted_values(self) -> dict[str, tuple[float, str | None]]:
        """Measurement name (as reports state it: ``lvef``, ``lvidd``, ``pasp`` ...) -> (voted value, unit)."""
        from rag.retrieve import PHENOTYPES

        out: dict[str, tuple[float, str | None]] = {}
        for name, pred in self.predictions.predictions.items():
            p = PHENOTYPES.get(name)
            if p is None or p.kind != "continuous" or pred.value is None:
                continue
            for measurement in p.measurements:
                out[measurement] = (pred.value, pred.unit)
        return out

    def voted_grades(self, section: str) -> dict[str, int]:
        """The findings of ``section`` and the grade the neighbour vote gives each.

        With a fitted threshold, a negative finding is grade 0 and a positive one its most probable
        grade >= 1; without, the most probable grade.
        """
        from rag.retrieve import PHENOTYPES

        out: dict[str, int] = {}
        for name, pred in self.predictions.predictions.items():
            p = PHENOTYPES.get(name)
            if p is None or p.section != section or p.kind != "finding" or pred.grade_probabilities is None:
                continue
            probs = np.asarray(pred.grade_probabilities)
            if pred.positive is None:
                out[name] = int(probs.argmax())
            else:
                out[name] = int(probs[1:].argmax()) + 1 if pred.positive else 0
        return out


def case_evidence(hit: SectionHit) -> CaseEvidence:
    """The provenance record of one retrieved report section."""
    return CaseEvidence(
        study_id=hit.study_id,
        report_section_id=hit.report_section_id,
        section=hit.section,
        similarity=round(float(hit.similarity), 6),
        rank=hit.rank,
        study_date=hit.study_date,
    )


def _clip_summaries(retriever: CaseRetriever, study_id: int) -> list[ClipSummary]:
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
                stored_view=catalog.clip_view.get(int(clip_id)),
            )
        )
    return out


_GRADE_WORDS = ("no", "mild", "moderate", "severe")


def _kb_query(section: str, predictions: StudyPredictions) -> str:
    """What to ask the knowledge base about a section: its topics and the findings the vote predicts.

    Built from a small vocabulary (section, grade words, finding names), so the same questions recur
    from study to study and their embeddings are reused.
    """
    from rag.retrieve import PHENOTYPES

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
    from rag.retrieve import PHENOTYPES

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
        clips=_clip_summaries(retriever, study_id),
        provenance=provenance,
    )


def _neighbours(pairs: Sequence[tuple[int, float]], n: int = 10) -> list[Neighbour]:
    return [Neighbour(study_id=int(s), similarity=round(float(sim), 6)) for s, sim in pairs[:n]]


def assemble_report(
    context: DraftContext,
    sections: Sequence[SectionDraft],
    *,
    generator: str,
    model: str | None = None,
    dropped_context: Sequence[str] = (),
    warnings: Sequence[str] = (),
) -> Report:
    """A :class:`Report` from drafted sections and the context's votes, clips and neighbours."""
    from rag.retrieve import PHENOTYPES

    order = {name: i for i, name in enumerate(ECHO_SECTIONS)}
    drafted = sorted((s for s in sections if s.sentences), key=lambda s: order.get(s.name, len(order)))
    measurements, findings = [], []
    for name, pred in context.predictions.predictions.items():
        p = PHENOTYPES.get(name)
        if p is not None and p.kind == "continuous":
            measurements.append(
                MeasurementDraft(
                    name=name,
                    section=pred.section,
                    value=round(pred.value, 3) if pred.value is not None else None,
                    unit=pred.unit,
                    neighbours=_neighbours(pred.neighbours),
                    n_searched=pred.n_searched,
                    note=pred.note,
                )
            )
        else:
            findings.append(
                FindingDraft(
                    name=name,
                    section=pred.section,
                    probability=round(pred.probability, 4) if pred.probability is not None else None,
                    positive=pred.positive,
                    threshold=pred.threshold,
                    grade_probabilities=pred.grade_probabilities,
                    neighbours=_neighbours(pred.neighbours),
                    note=pred.note,
                )
            )
    used: dict[int, set[str]] = {}
    for s in drafted:
        for sentence in s.sentences:
            for ev in sentence.evidence:
                if isinstance(ev, CaseEvidence):
                    used.setdefault(ev.study_id, set()).add(ev.section)
    best: dict[int, float] = {}
    for hits in context.retrieval.sections.values():
        for h in hits:
            best[h.study_id] = max(best.get(h.study_id, -1.0), float(h.similarity))
    studies = context.retrieval  # pseudonyms and dates of neighbours come from their hits
    info: dict[int, tuple[str, dt.date | None]] = {}
    for hits in studies.sections.values():
        for h in hits:
            info[h.study_id] = (h.patient_pseudonym, h.study_date)
    neighbours = sorted(
        (
            NeighbourCase(
                study_id=sid,
                patient_pseudonym=info[sid][0],
                study_date=info[sid][1],
                similarity=round(best[sid], 6),
                sections=sorted(secs, key=lambda x: order.get(x, len(order))),
            )
            for sid, secs in used.items()
            if sid in info
        ),
        key=lambda n: -n.similarity,
    )
    provenance = context.provenance.model_copy(update={"generator": generator, "model": model})
    return Report(
        study_id=context.study_id,
        patient_pseudonym=context.patient_pseudonym,
        study_date=context.study_date,
        sections=drafted,
        measurements=measurements,
        findings=findings,
        clips=context.clips,
        neighbours=neighbours,
        no_evidence=list(context.retrieval.no_evidence),
        dropped_context=list(dropped_context),
        warnings=[*context.warnings, *warnings],
        provenance=provenance,
    )


def grade_agreement(wanted: Mapping[str, int], stated: Mapping[str, int]) -> int:
    """How many of the voted grades a candidate text states (findings it does not mention count as 0)."""
    return sum(1 for name, grade in wanted.items() if stated.get(name, 0) == grade)
