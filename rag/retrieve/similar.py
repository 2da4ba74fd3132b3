"""Similar cases: the other studies nearest a study over all its anatomical sections.

Each section of the query retrieves its nearest report sections of other patients (view-informed
section embeddings, :meth:`CaseRetriever.retrieve`); a study's similarity is the sum of its sections'
similarities over the sections searched (a section where it is not among the nearest adds nothing),
so a case close in many sections ranks above one close in a single section. Filters: views the case
must hold, a date range, findings its own report must state (grade >= 1).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rag.core.errors import RetrievalError
from rag.vocab.findings import PHENOTYPES

if TYPE_CHECKING:
    from rag.retrieve.retriever import CaseRetriever
    from rag.retrieve.voting import NeighbourVoter

__all__ = ["SimilarCase", "finding_counts", "similar_studies", "similar_to_text"]


@dataclass(frozen=True)
class SimilarCase:
    """One similar study: its score, the sections it was near in, its date and views."""

    study_id: int
    similarity: float  # mean over the query's searched sections (0 where the study was not among the nearest)
    sections: dict[str, float]  # section -> similarity where it was among the nearest
    study_date: dt.date | None
    views: tuple[str, ...]


def similar_studies(
    retriever: CaseRetriever,
    study_id: int,
    k: int = 10,
    *,
    views: Sequence[str] | None = None,
    after: dt.date | None = None,
    before: dt.date | None = None,
    findings: Sequence[str] = (),
    voter: NeighbourVoter | None = None,
) -> list[SimilarCase]:
    """The ``k`` studies of other patients most similar to ``study_id``, best first.

    Raises:
        UnknownStudyError: the study is not stored.
        RetrievalError: a bad parameter (k < 1, an unknown view or finding, a finding filter without voter).
    """
    if k < 1:
        raise RetrievalError(f"k must be at least 1, got {k}")
    unknown = [f for f in findings if f not in PHENOTYPES or PHENOTYPES[f].kind != "finding"]
    if unknown:
        known = sorted(n for n, p in PHENOTYPES.items() if p.kind == "finding")
        raise RetrievalError(f"unknown finding(s) {unknown}; known: {known}")
    if findings and voter is None:
        raise RetrievalError("a finding filter needs the neighbour voter (its grade reader)")
    pool = max(4 * k, 40)
    found = retriever.retrieve(study_id, pool, before_date=before, views=set(views) if views else None, with_text=False)
    searched = max(len(found.sections), 1)
    scores: dict[int, dict[str, float]] = {}
    for section, hits in found.sections.items():
        for hit in hits:
            best = scores.setdefault(hit.study_id, {})
            best[section] = max(best.get(section, -1.0), float(hit.similarity))
    catalog = retriever.catalog
    ranked = sorted(((sum(sec.values()) / searched, sid) for sid, sec in scores.items()), key=lambda x: (-x[0], x[1]))
    out: list[SimilarCase] = []
    for similarity, sid in ranked:  # best first: the filters and the views are read only until k are found
        date = catalog.study(sid).study_date
        if after is not None and (date is None or date < after):
            continue
        if findings:
            assert voter is not None
            labels = voter.report_labels(sid)
            if any(labels.get(f, 0.0) < 1 for f in findings):
                continue
        out.append(SimilarCase(sid, similarity, scores[sid], date, tuple(sorted(retriever.study_views(sid)))))
        if len(out) == k:
            break
    return out


def finding_counts(voter: NeighbourVoter, study_id: int) -> dict[str, dict[str, int]]:
    """For each finding: how many of the study's nearest neighbours (in the finding's own section, the
    voter's k) have it in their reports (grade >= 1), and how many were searched."""
    predictions = voter.predict(study_id)
    out: dict[str, dict[str, int]] = {}
    labels: dict[int, dict[str, float]] = {}
    for name, p in predictions.predictions.items():
        if p.kind != "finding" or not p.neighbours:
            continue
        for sid, _ in p.neighbours:
            if sid not in labels:
                labels[sid] = voter.report_labels(sid)
        grades = [labels[sid].get(name, 0.0) for sid, _ in p.neighbours]
        out[name] = {"with": sum(1 for g in grades if g >= 1), "of": len(grades)}
    return out


def similar_to_text(
    retriever: CaseRetriever, query: np.ndarray, k: int = 10, *, sections: Sequence[str] | None = None
) -> list[tuple[int, float, str]]:
    """Studies whose report sections are nearest a text embedding (the encoder's text tower):
    (study ID, best similarity, the section it was found in), best first."""
    from rag.vocab.sections import ECHO_SECTIONS

    if k < 1:
        raise RetrievalError(f"k must be at least 1, got {k}")
    wanted = list(sections or ECHO_SECTIONS)
    unknown = [s for s in wanted if s not in ECHO_SECTIONS]
    if unknown:
        raise RetrievalError(f"unknown section(s) {unknown}; allowed sections: {list(ECHO_SECTIONS)}")
    index = retriever.report_sections
    best: dict[int, tuple[float, str]] = {}
    q = np.asarray(query, np.float32).reshape(1, -1)
    for section in wanted:
        if not len(index.section_rows(ECHO_SECTIONS.index(section))):
            continue
        scores, ids = index.index_of(section).search(q, 4 * k)
        for score, sid in zip(scores[0], ids[0], strict=True):
            if sid < 0:
                continue
            study = index.study_of(int(sid))
            if study not in best or float(score) > best[study][0]:
                best[study] = (float(score), section)
    ranked = sorted(best.items(), key=lambda x: (-x[1][0], x[0]))[:k]
    return [(sid, score, section) for sid, (score, section) in ranked]
