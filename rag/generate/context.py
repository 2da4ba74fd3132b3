"""What a generator drafts from: the study's retrieved cases, neighbour votes, KB passages and clips.

:func:`rag.draft.context.gather_context` runs retrieval once per study; every generator reads the same
:class:`DraftContext`, and :func:`assemble_report` turns drafted sections plus the context into a
:class:`~rag.generate.report.Report` with measurements, findings, clips, neighbours and provenance.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from rag.generate.report import (
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
from rag.vocab.sections import ECHO_SECTIONS

if TYPE_CHECKING:
    from rag.retrieve import SectionHit, StudyPredictions, StudyRetrieval

__all__ = ["DraftContext", "KBHitLike", "KBSearcher", "assemble_report", "case_evidence", "grade_agreement"]


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
        from rag.vocab.findings import PHENOTYPES

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

        With fitted thresholds, a finding is moderate or worse when its moderate threshold is reached,
        abnormal when its threshold is, else grade 0 (:meth:`rag.retrieve.voting.Prediction.voted_grade`);
        without, the most probable grade. LV systolic dysfunction follows the voted LVEF where there is
        one (ASE cut-offs, :func:`rag.vocab.cutoffs.lvef_grades`), so a draft never says "mildly
        reduced" beside an LVEF of 60 %.
        """
        from rag.vocab.cutoffs import lvef_grades
        from rag.vocab.findings import PHENOTYPES

        out: dict[str, int] = {}
        for name, pred in self.predictions.predictions.items():
            p = PHENOTYPES.get(name)
            grade = pred.voted_grade()
            if p is None or p.section != section or p.kind != "finding" or grade is None:
                continue
            out[name] = grade
        lvef = self.voted_values.get("lvef")
        if "lv_systolic_dysfunction" in out and lvef is not None:
            # LV function is graded by the LVEF (ASE): the stated grade never contradicts the stated number
            allowed = lvef_grades(lvef[0])
            voted = out["lv_systolic_dysfunction"]
            out["lv_systolic_dysfunction"] = voted if voted in allowed else min(allowed, key=lambda g: abs(g - voted))
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
    from rag.vocab.findings import PHENOTYPES

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
