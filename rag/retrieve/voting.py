"""Measurements and findings predicted by neighbour votes, each from its own anatomical section's neighbours.

For a query study and a phenotype, the neighbours are the ``k`` report sections (k = 50 by default)
nearest to the study's embedding of the phenotype's section — the section named in
:data:`PHENOTYPES`, looked up by name for every phenotype, so LVEF votes with Left Ventricle
neighbours, pericardial effusion with Pericardium neighbours, and so on. Votes are weighted by
similarity (``max(similarity, 0)``; equal weights when every similarity is <= 0; or
``softmax(similarity / temperature)`` when a temperature is given):

- continuous phenotypes: the weighted mean of the neighbour studies' stored measurements
  (``measurements`` table); neighbours without the measurement do not vote;
- findings: each neighbour's grade 0-3 is read from its section text (:mod:`rag.vocab.grades`);
  the probability is the weighted fraction of neighbours at or above the phenotype's positive grade,
  ``value`` the weighted mean grade. With fitted thresholds (:func:`fit_thresholds`, stored as JSON
  beside the weight file), ``positive`` says whether the probability reaches the threshold.

Every prediction lists the neighbours that voted as (study ID, similarity).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from rag.core.errors import RetrievalError
from rag.index.catalog import Catalog
from rag.retrieve.results import RetrievalParams, SectionHit
from rag.retrieve.retriever import CaseRetriever
from rag.retrieve.thresholds import CRITERIA, Thresholds, best_threshold
from rag.vocab.findings import PHENOTYPES, Phenotype
from rag.vocab.grades import statement_grade
from rag.vocab.sections import ECHO_SECTIONS

__all__ = [
    "NeighbourVoter",
    "Prediction",
    "StudyPredictions",
    "fit_thresholds",
]


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    """One predicted phenotype of one study, with the neighbours behind it.

    Attributes:
        name / section: the phenotype and the section whose neighbours voted.
        value: continuous: the weighted mean measurement; finding: the weighted mean grade (0-3).
        unit: the measurement's unit (None for findings).
        probability: findings: the weighted fraction of neighbours at or above the positive grade.
        grade_probabilities: findings: weighted fraction of neighbours at grade 0, 1, 2, 3.
        positive: findings: probability >= threshold, when a threshold is known.
        threshold: the threshold used, if any.
        moderate: findings: the probability of grade >= 2 reaches its own fitted threshold (a finding
            called moderate or worse), when that threshold is known.
        neighbours: (study ID, similarity) of every neighbour that voted, most similar first.
        n_searched: how many neighbours the search returned.
        note: why there is no value ("no evidence", "no neighbour has the measurement"), else None.
    """

    name: str
    section: str
    kind: str
    value: float | None
    unit: str | None
    probability: float | None
    grade_probabilities: tuple[float, float, float, float] | None
    positive: bool | None
    threshold: float | None
    neighbours: list[tuple[int, float]]
    n_searched: int
    note: str | None = None
    moderate: bool | None = None

    def voted_grade(self) -> int | None:
        """The grade the vote calls (findings): moderate or worse when ``moderate``, else abnormal when
        ``positive`` (the most probable grade in that range), else 0; without thresholds the most
        probable grade. None when nothing voted."""
        if self.grade_probabilities is None:
            return None
        probs = np.asarray(self.grade_probabilities)
        if self.positive is None and self.moderate is None:
            return int(probs.argmax())
        if self.moderate:
            return int(probs[2:].argmax()) + 2
        return int(probs[1:].argmax()) + 1 if self.positive else 0


@dataclass(frozen=True)
class StudyPredictions:
    """Every predicted phenotype of one study."""

    study_id: int
    predictions: dict[str, Prediction]
    no_evidence: list[str]
    params: RetrievalParams
    thresholds: str | None = None

    def to_dict(self) -> dict[str, Any]:
        def default(o: object) -> object:
            return o.isoformat() if isinstance(o, dt.date) else str(o)

        data: dict[str, Any] = json.loads(json.dumps(asdict(self), default=default))
        return data


def _vote_weights(similarities: np.ndarray, temperature: float | None = None) -> np.ndarray:
    """Vote weights summing to 1: ``max(sim, 0)`` (equal when all are <= 0), or ``softmax(sim / temperature)``."""
    s = np.asarray(similarities, dtype=np.float64)
    if temperature is not None:
        w = np.exp((s - s.max()) / temperature)
    else:
        w = np.clip(s, 0.0, None)
        if w.sum() <= 0:
            w = np.ones_like(w)
    return np.asarray(w / w.sum())


# --------------------------------------------------------------------------------------------------
# The voter
# --------------------------------------------------------------------------------------------------


class NeighbourVoter:
    """Predicts :data:`PHENOTYPES` for a study from its nearest neighbours, section by section.

    Args:
        retriever: the case retriever (its weight table makes the query embeddings).
        k: neighbours per section (EchoPrime uses 50).
        phenotypes: the phenotypes to predict (default all of :data:`PHENOTYPES`).
        thresholds: decision thresholds of the findings, if fitted.
        temperature: weight votes by ``softmax(similarity / temperature)`` instead of ``max(similarity, 0)``;
            useful when similarities crowd together (an anisotropic embedding space), where plain
            similarity weights are nearly equal.
    """

    def __init__(
        self,
        retriever: CaseRetriever,
        *,
        k: int = 50,
        phenotypes: Mapping[str, Phenotype] | None = None,
        thresholds: Thresholds | None = None,
        temperature: float | None = None,
    ) -> None:
        if k < 1:
            raise RetrievalError(f"k={k} is invalid; use at least 1 neighbour")
        if temperature is not None and not temperature > 0:
            raise RetrievalError(f"temperature={temperature} is invalid; use a positive value such as 0.02, or None")
        self.temperature = temperature
        self.retriever = retriever
        self.k = k
        self.phenotypes: Mapping[str, Phenotype] = phenotypes if phenotypes is not None else PHENOTYPES
        for name, p in self.phenotypes.items():
            if name != p.name:
                raise RetrievalError(f"phenotype table key '{name}' differs from the phenotype's name '{p.name}'")
        self.thresholds = thresholds
        if (
            thresholds is not None
            and thresholds.weights
            and not thresholds.weights.endswith(retriever.weights.fingerprint)
        ):
            log.warning(
                "thresholds were fitted with weights %s, votes use %s@%s",
                thresholds.weights,
                retriever.weights.name,
                retriever.weights.fingerprint,
            )
        self._grades: dict[tuple[int, str], int] = {}

    # -- labels -------------------------------------------------------------------------------------

    def section_grades(self, section_ids: Iterable[int], phenotype: Phenotype) -> dict[int, int]:
        """Report section ID -> the phenotype's grade stated in that section's text (cached)."""
        if phenotype.rule is None:
            raise RetrievalError(f"phenotype '{phenotype.name}' is not a finding")
        ids = [int(i) for i in section_ids]
        library = self.retriever.library
        if library is not None and phenotype.name in library.manifest.findings:  # read once when it was built
            return dict(zip(ids, library.stated_grades(ids, phenotype.name).tolist(), strict=True))
        todo = [i for i in ids if (i, phenotype.name) not in self._grades]
        if todo:
            texts = Catalog.texts(self.retriever.store, todo)
            findings = [p for p in self.phenotypes.values() if p.rule is not None]
            for sid, text in texts.items():
                for p in findings:
                    assert p.rule is not None
                    self._grades[(sid, p.name)] = statement_grade(text, p.rule)
        return {i: self._grades.get((i, phenotype.name), 0) for i in ids}

    def report_labels(self, study_id: int) -> dict[str, float]:
        """The study's own labels: measurements as stored, findings' grades read from its report sections.

        Findings of a section the study's report lacks are 0 (the normal finding left unsaid);
        continuous phenotypes without a stored measurement are left out.
        """
        catalog = self.retriever.catalog
        own = catalog.section_ids[catalog.section_study == int(study_id)]
        codes = catalog.section_codes[catalog.section_study == int(study_id)]
        out: dict[str, float] = {}
        measured = catalog.measurements.get(int(study_id), {})
        for p in self.phenotypes.values():
            if p.kind == "continuous":
                value = next((measured[m] for m in p.measurements if m in measured), None)
                if value is not None:
                    out[p.name] = value
                continue
            ids = own[codes == ECHO_SECTIONS.index(p.section)]
            grades = self.section_grades(ids, p)
            out[p.name] = float(max(grades.values())) if grades else 0.0
        return out

    # -- prediction ---------------------------------------------------------------------------------

    def neighbours(
        self,
        study_id: int,
        section: str,
        *,
        exclude_same_patient: bool = True,
        before_date: dt.date | None = None,
        views: set[str] | None = None,
    ) -> list[SectionHit]:
        """The ``k`` nearest report sections of ``section`` for the study (texts not read)."""
        hits, _ = self.retriever.search_section(
            study_id,
            section,
            self.k,
            exclude_same_patient=exclude_same_patient,
            before_date=before_date,
            views=views,
            with_text=False,
        )
        return hits

    def predict(
        self,
        study_id: int,
        *,
        names: Sequence[str] | None = None,
        exclude_same_patient: bool = True,
        before_date: dt.date | None = None,
        views: set[str] | None = None,
    ) -> StudyPredictions:
        """Predict phenotypes of ``study_id`` (default all), each from its own section's neighbours.

        Raises:
            UnknownStudyError: the study is not stored.
            RetrievalError: an unknown phenotype name.
        """
        wanted = list(self.phenotypes) if names is None else list(names)
        unknown = [n for n in wanted if n not in self.phenotypes]
        if unknown:
            raise RetrievalError(f"unknown phenotype(s) {unknown}; known: {sorted(self.phenotypes)}")
        embeddings = self.retriever.section_embeddings(study_id)
        by_section: dict[str, list[SectionHit]] = {}
        for section in dict.fromkeys(self.phenotypes[n].section for n in wanted):
            if embeddings.has_evidence[ECHO_SECTIONS.index(section)]:
                by_section[section], _ = self.retriever.search_section(
                    study_id,
                    section,
                    self.k,
                    exclude_same_patient=exclude_same_patient,
                    before_date=before_date,
                    views=views,
                    with_text=False,
                    query=embeddings,
                )
        predictions = {n: self._vote(self.phenotypes[n], by_section.get(self.phenotypes[n].section)) for n in wanted}
        return StudyPredictions(
            study_id=int(study_id),
            predictions=predictions,
            no_evidence=[s for s in embeddings.no_evidence if s in {self.phenotypes[n].section for n in wanted}],
            params=self.retriever.params(
                k=self.k,
                exclude_same_patient=exclude_same_patient,
                before_date=before_date,
                views=views,
                mmr_lambda=None,
                mmr_pool=None,
            ),
            thresholds=self.thresholds.criterion if self.thresholds is not None else None,
        )

    def _empty(self, p: Phenotype, note: str, n_searched: int) -> Prediction:
        return Prediction(
            name=p.name,
            section=p.section,
            kind=p.kind,
            value=None,
            unit=p.unit,
            probability=None,
            grade_probabilities=None,
            positive=None,
            threshold=self.thresholds.values.get(p.name) if self.thresholds else None,
            neighbours=[],
            n_searched=n_searched,
            note=note,
        )

    def _vote(self, p: Phenotype, hits: list[SectionHit] | None) -> Prediction:
        if hits is None:
            return self._empty(p, f"no evidence: the study has no clip of a view that informs {p.section}", 0)
        if not hits:
            return self._empty(p, f"no {p.section} report section of another study passed the filters", 0)
        if p.kind == "continuous":
            measured = self.retriever.catalog.measurements
            voters: list[tuple[SectionHit, float]] = []
            for h in hits:
                values = measured.get(h.study_id, {})
                value = next((values[m] for m in p.measurements if m in values), None)
                if value is not None:
                    voters.append((h, value))
            if not voters:
                return self._empty(p, f"no neighbour has a stored {'/'.join(p.measurements)}", len(hits))
            w = _vote_weights(np.array([h.similarity for h, _ in voters]), self.temperature)
            mean = float(np.dot(w, [v for _, v in voters]))
            return Prediction(
                name=p.name,
                section=p.section,
                kind=p.kind,
                value=mean,
                unit=p.unit,
                probability=None,
                grade_probabilities=None,
                positive=None,
                threshold=None,
                neighbours=[(h.study_id, h.similarity) for h, _ in voters],
                n_searched=len(hits),
            )
        grades_by_id = self.section_grades([h.report_section_id for h in hits], p)
        grades = np.array([grades_by_id[h.report_section_id] for h in hits])
        w = _vote_weights(np.array([h.similarity for h in hits]), self.temperature)
        dist = tuple(float(w[grades == g].sum()) for g in range(4))
        probability = float(w[grades >= p.positive_grade].sum())
        threshold = self.thresholds.values.get(p.name) if self.thresholds else None
        moderate = self.thresholds.moderate.get(p.name) if self.thresholds else None
        return Prediction(
            name=p.name,
            section=p.section,
            kind=p.kind,
            value=float(np.dot(w, grades)),
            unit=None,
            probability=probability,
            grade_probabilities=(dist[0], dist[1], dist[2], dist[3]),
            positive=probability >= threshold if threshold is not None else None,
            threshold=threshold,
            neighbours=[(h.study_id, h.similarity) for h in hits],
            n_searched=len(hits),
            moderate=dist[2] + dist[3] >= moderate if moderate is not None else None,
        )


def fit_thresholds(
    voter: NeighbourVoter,
    study_ids: Iterable[int],
    *,
    criterion: str = "accuracy",
    moderate_criterion: str | None = "youden",
    labels: Mapping[str, Mapping[int, int]] | None = None,
    exclude_same_patient: bool = True,
) -> Thresholds:
    """Fit each finding's threshold on validation studies.

    Args:
        voter: the voter whose probabilities are thresholded.
        study_ids: the validation studies (their patients should be unseen by whatever was fitted before).
        criterion: how the threshold of "abnormal" (grade >= the positive grade) is chosen: ``youden``,
            ``f1`` or ``accuracy`` (:func:`rag.retrieve.thresholds.best_threshold`). ``accuracy``
            (the default) calls a finding only where that is right more often than calling it normal.
        moderate_criterion: how the threshold of "moderate or worse" (the neighbours' share at grade
            >= 2 against labels >= 2) is chosen; ``youden`` (the default) weighs a missed moderate
            finding as much as a false call, so the draft states the findings that matter. None: not fitted.
        labels: phenotype -> study ID -> grade (e.g. ground truth); default: each study's own report
            section text read with the same keyword rules as the votes.
        exclude_same_patient: as in retrieval.

    Returns: the thresholds; phenotypes whose validation labels have one class only are skipped.
    """
    for name in (criterion, moderate_criterion):
        if name is not None and name not in CRITERIA:
            raise RetrievalError(f"unknown threshold criterion {name!r}; use one of {', '.join(CRITERIA)}")
    findings = [p for p in voter.phenotypes.values() if p.kind == "finding"]
    probs: dict[str, list[float]] = {p.name: [] for p in findings}
    probs2: dict[str, list[float]] = {p.name: [] for p in findings}
    ys: dict[str, list[int]] = {p.name: [] for p in findings}
    ys2: dict[str, list[int]] = {p.name: [] for p in findings}
    for study_id in study_ids:
        prediction = voter.predict(
            study_id, names=[p.name for p in findings], exclude_same_patient=exclude_same_patient
        )
        own = voter.report_labels(study_id) if labels is None else None
        for p in findings:
            pred = prediction.predictions[p.name]
            if pred.probability is None:
                continue
            if labels is not None:
                grade = labels.get(p.name, {}).get(int(study_id))
            else:
                assert own is not None
                grade = int(own[p.name]) if p.name in own else None
            if grade is None:
                continue
            probs[p.name].append(pred.probability)
            ys[p.name].append(int(grade >= p.positive_grade))
            if pred.grade_probabilities is not None:
                probs2[p.name].append(float(sum(pred.grade_probabilities[2:])))
                ys2[p.name].append(int(grade >= 2))
    values: dict[str, float] = {}
    scores: dict[str, float] = {}
    support: dict[str, tuple[int, int]] = {}
    skipped: dict[str, str] = {}
    for p in findings:
        y = np.array(ys[p.name], dtype=int)
        support[p.name] = (int(y.sum()), int(len(y) - y.sum()))
        if y.sum() == 0 or y.sum() == len(y):
            skipped[p.name] = f"validation labels of one class only ({support[p.name][0]} positive of {len(y)})"
            continue
        values[p.name], scores[p.name] = best_threshold(np.array(probs[p.name]), y, criterion)
    moderate: dict[str, float] = {}
    if moderate_criterion is not None:
        for p in findings:
            y2 = np.array(ys2[p.name], dtype=int)
            if 0 < y2.sum() < len(y2):  # else no moderate finding to learn from: the "abnormal" threshold decides
                moderate[p.name] = best_threshold(np.array(probs2[p.name]), y2, moderate_criterion)[0]
    weights = voter.retriever.weights
    return Thresholds(
        values=values,
        criterion=criterion,
        moderate=moderate,
        moderate_criterion=moderate_criterion or "",
        scores=scores,
        support=support,
        k=voter.k,
        weights=f"{weights.name}@{weights.fingerprint}",
        skipped=skipped,
    )
