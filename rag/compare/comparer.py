"""``compare``: a study against the patient's prior one, on the same evidence rules as drafts.

Per phenotype the comparison reads both studies the way a draft reads one (neighbour votes of other
patients' report sections, per anatomical section), anchors the prior on its own report where it has
one, and calls the change from the difference of the two votes (shared biases of the two readings
cancel) plus the change pairs' vote (:mod:`rag.compare.pairs`), with thresholds fitted on validation
pairs (:mod:`rag.compare.calls`). Every statement cites numbered evidence.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.compare.calls import MEASURED_GRADES, SIGNIFICANT, ChangeModel, call_of, measured_grade
from rag.compare.narrative import EvidenceNumbering, extractive_statements, no_prior_statements
from rag.compare.pairs import ChangePairIndex, PairHit, consecutive_pairs
from rag.compare.prior import find_prior
from rag.compare.result import (
    ChangePair,
    Comparison,
    EvidenceItem,
    FindingChange,
    MeasurementDelta,
    SectionShift,
    ViewPair,
)
from rag.core.errors import RagError
from rag.vocab.findings import PHENOTYPES
from rag.vocab.sections import ECHO_SECTIONS

if TYPE_CHECKING:
    from rag.core.config import RagConfig
    from rag.draft.drafter import Drafter
    from rag.retrieve import Prediction, SectionEmbeddings, StudyPredictions

__all__ = ["CHANGE_FILE", "Comparer", "PairFeatures", "compare"]

log = logging.getLogger(__name__)

CHANGE_FILE = "change-thresholds.json"
FINDINGS = tuple(p.name for p in PHENOTYPES.values() if p.kind == "finding")
MEASUREMENTS = tuple(p.name for p in PHENOTYPES.values() if p.kind == "continuous" and p.name in SIGNIFICANT)


@dataclass(frozen=True)
class PairFeatures:
    """What a comparison of two studies rests on, before any threshold."""

    prior_id: int
    current_id: int
    prior: StudyPredictions
    current: StudyPredictions
    prior_embeddings: SectionEmbeddings
    current_embeddings: SectionEmbeddings
    hits: dict[str, list[PairHit]]  # section -> change pairs
    pair_votes: dict[str, float]  # phenotype -> change pairs' vote (-1..1)
    pair_deltas: dict[str, float]  # measurement -> the change pairs' mean change
    prior_labels: dict[str, float] | None  # the prior's own report, when it has one

    def vote_delta(self, name: str) -> float | None:
        a, b = self.prior.predictions.get(name), self.current.predictions.get(name)
        if a is None or b is None or a.value is None or b.value is None:
            return None
        return float(b.value - a.value)

    def shift(self, section: str) -> float | None:
        i = ECHO_SECTIONS.index(section)
        if not (self.prior_embeddings.has_evidence[i] and self.current_embeddings.has_evidence[i]):
            return None
        return float(1.0 - np.dot(self.prior_embeddings.vectors[i], self.current_embeddings.vectors[i]))


class Comparer:
    """Compares studies of one workspace; loads the case library, votes and change pairs once.

    Args:
        drafter: the workspace's :class:`~rag.draft.drafter.Drafter` (default: one opened on ``config``).
        pair_k: change pairs retrieved per section (default: the fitted model's).
        model: the change thresholds (default: ``<workspace>/change-thresholds.json`` when present, else
            one grade step / one significant change of vote difference).
    """

    def __init__(
        self,
        drafter: Drafter | None = None,
        *,
        config: RagConfig | None = None,
        checkpoint: Path | None = None,
        pair_k: int | None = None,
        model: ChangeModel | None = None,
    ) -> None:
        from rag.draft.drafter import Drafter

        self.drafter = drafter if drafter is not None else Drafter(config, checkpoint=checkpoint)
        self._pair_k = pair_k
        self._pairs: ChangePairIndex | None = None
        self._pairs_of: object = None  # the retriever the change pairs were built from
        self._features: dict[tuple[int, int, int], PairFeatures] = {}
        self._features_of: object = None
        path = self.drafter.config.home / CHANGE_FILE
        self.model = model if model is not None else (ChangeModel.load(path) if path.is_file() else ChangeModel())

    @property
    def pair_k(self) -> int:
        return self._pair_k if self._pair_k is not None else self.model.pair_k

    # -- what the comparison reads -----------------------------------------------------------------

    def report_labels(self, study_id: int) -> dict[str, float] | None:
        catalog = self.drafter.retriever.catalog
        if not np.any(catalog.section_study == int(study_id)):
            return None
        return self.drafter.voter.report_labels(int(study_id))

    @property
    def pairs(self) -> ChangePairIndex:
        """Every patient's consecutive embedded studies, as section changes (built once, in memory)."""
        retriever = self.drafter.retriever
        if self._pairs is None or self._pairs_of is not retriever:  # reopened after a new study: rebuild
            self._pairs_of = retriever
            catalog, studies = retriever.catalog, retriever.studies
            rows = []
            for sid in catalog.study_ids:
                if int(sid) in studies:
                    info = catalog.study(int(sid))
                    rows.append((info.study_id, info.patient_id, info.study_date))
            pairs = consecutive_pairs(rows)
            used = sorted({s for pair in pairs for s in pair})
            embeddings = {}
            for sid in used:
                e = studies.get(sid)
                embeddings[sid] = (e.vectors, e.evidence)
            labels = {sid: self.report_labels(sid) or {} for sid in used}
            patients = {sid: catalog.study(sid).patient_id for sid in used}
            self._pairs = ChangePairIndex(pairs, embeddings, patients, [(labels[a], labels[b]) for a, b in pairs])
            log.info("change pairs: %d pairs of %d studies", len(pairs), len(used))
        return self._pairs

    def features(self, prior_id: int, current_id: int) -> PairFeatures:
        """Both studies' votes and embeddings, the change pairs per section and their votes (kept for the
        last 512 pairs asked, per retriever and number of change pairs: fitting and scoring ask again)."""
        if self._features_of is not self.drafter.retriever:  # reopened after a new study: read afresh
            self._features, self._features_of = {}, self.drafter.retriever
        key = (int(prior_id), int(current_id), self.pair_k)
        if key not in self._features:
            if len(self._features) >= 512:
                self._features.pop(next(iter(self._features)))
            self._features[key] = self._read_features(prior_id, current_id)
        return self._features[key]

    def _read_features(self, prior_id: int, current_id: int) -> PairFeatures:
        voter, retriever = self.drafter.voter, self.drafter.retriever
        prior, current = voter.predict(int(prior_id)), voter.predict(int(current_id))
        ep, ec = retriever.section_embeddings(int(prior_id)), retriever.section_embeddings(int(current_id))
        patient = retriever.catalog.study(int(current_id)).patient_id
        hits: dict[str, list[PairHit]] = {}
        for i, section in enumerate(ECHO_SECTIONS):
            if ep.has_evidence[i] and ec.has_evidence[i]:
                delta = ec.vectors[i] - ep.vectors[i]
                hits[section] = self.pairs.search(section, delta, self.pair_k, exclude_patient=patient)
        votes, deltas = {}, {}
        for name, p in PHENOTYPES.items():
            if p.section in hits:
                votes[name] = self.pairs.change_vote(hits[p.section], name, SIGNIFICANT.get(name, 0.5))
                if name in SIGNIFICANT and (moved := self.pairs.value_change(hits[p.section], name)) is not None:
                    deltas[name] = moved
        return PairFeatures(
            int(prior_id),
            int(current_id),
            prior,
            current,
            ep,
            ec,
            hits,
            votes,
            deltas,
            self.report_labels(int(prior_id)),
        )

    # -- the comparison ----------------------------------------------------------------------------

    def compare(
        self,
        current: int | str | Path,
        prior: int | str | Path | None = None,
        *,
        generator: str = "extractive",
        base_url: str | None = None,
    ) -> Comparison:
        """Compare ``current`` (a stored study ID or a folder of DICOMs) with ``prior`` (default: the
        patient's most recent earlier study). A patient with no earlier study gets a comparison whose
        ``status`` is "no prior", not an error. ``generator="openai"`` has the configured
        OpenAI-compatible server (or ``base_url``) write the narrative, under the rules of
        :mod:`rag.compare.llm`.

        Raises:
            UnknownStudyError: a study ID that is not stored.
            rag.llm.LLMError: the server failed (``generator="openai"``).
        """
        if generator not in ("extractive", "openai"):
            raise RagError(f"unknown generator {generator!r}; use 'extractive' or 'openai'")
        result = self._compare(current, prior)
        if generator == "openai":
            from rag.compare.llm import OpenAINarrator
            from rag.llm.client import ChatClient

            llm = self.drafter.config.llm
            client = ChatClient(base_url or llm.base_url, llm.model, api_key=llm.api_key, timeout=llm.timeout_s)
            result = OpenAINarrator(client, max_tokens=llm.max_tokens, temperature=llm.temperature).narrate(result)
        return result

    def _compare(self, current: int | str | Path, prior: int | str | Path | None) -> Comparison:
        current_id = self.drafter.resolve(current)
        store = self.drafter.store
        lookup = find_prior(store, current_id)
        warnings: list[str] = []
        if prior is not None:
            prior_id: int | None = self.drafter.resolve(prior)
            catalog = self.drafter.retriever.catalog
            if catalog.study(int(prior_id or 0)).patient_id != catalog.study(current_id).patient_id:
                warnings.append(f"study {prior_id} belongs to another patient: compared as asked")
            prior_date = catalog.study(int(prior_id or 0)).study_date
        else:
            prior_id, prior_date = lookup.prior_id, lookup.prior_date
        encoder = f"{self.drafter._encoder_name}@{self.drafter.sha256[:12]}"
        if prior_id is None:
            return Comparison(
                current_study_id=current_id,
                prior_study_id=None,
                current_date=lookup.study_date,
                status="no prior",
                reason=lookup.reason,
                encoder=encoder,
                statements=no_prior_statements(lookup.reason),
            )
        if prior_id == current_id:
            warnings.append("the study is compared with itself")
        f = self.features(prior_id, current_id)
        interval = (lookup.study_date - prior_date).days if lookup.study_date and prior_date else None
        if interval is not None and interval < 0:
            warnings.append(f"the prior study is {-interval} days after the current one")
        numbering = EvidenceNumbering()
        if f.prior_labels is not None:
            numbering.add(EvidenceItem(number=0, kind="prior_report", study_id=prior_id, role="prior"))
        measurements = [m for name in MEASUREMENTS if (m := self._measurement(name, f, numbering)) is not None]
        findings = [c for name in FINDINGS if (c := self._finding(name, f, numbering, measurements)) is not None]
        measurements = [_agree(m, findings) for m in measurements]
        shifts = [SectionShift(section=s, shift=f.shift(s)) for s in ECHO_SECTIONS]
        changed_sections = {PHENOTYPES[c.name].section for c in findings if c.call != "unchanged"} | {
            m.section for m in measurements if m.call not in (None, "unchanged")
        }
        pairs = self._pairs_shown(f, changed_sections, numbering)
        comparison = Comparison(
            current_study_id=current_id,
            prior_study_id=prior_id,
            current_date=lookup.study_date,
            prior_date=prior_date,
            interval_days=interval,
            status="compared",
            measurements=measurements,
            findings=findings,
            shifts=shifts,
            change_pairs=pairs,
            views=self._views(prior_id, current_id),
            evidence=numbering.items,
            encoder=encoder,
            warnings=warnings,
        )
        return comparison.model_copy(update={"statements": extractive_statements(comparison)})

    def _cite(self, prediction: Prediction | None, role: str, numbering: EvidenceNumbering, n: int = 3) -> list[int]:
        if prediction is None:
            return []
        return [
            numbering.add(
                EvidenceItem(
                    number=0,
                    kind="neighbour",
                    study_id=int(sid),
                    similarity=round(float(sim), 4),
                    role=role,
                    section=prediction.section,
                )
            )
            for sid, sim in prediction.neighbours[:n]
        ]

    def _evidence_for(self, name: str, f: PairFeatures, numbering: EvidenceNumbering) -> list[int]:
        cited = [1] if f.prior_labels is not None else []
        cited += self._cite(f.prior.predictions.get(name), "prior", numbering)
        cited += self._cite(f.current.predictions.get(name), "current", numbering)
        return sorted(set(cited))

    def _spread(self, prediction: Prediction) -> float | None:
        measured = self.drafter.retriever.catalog.measurements
        p = PHENOTYPES[prediction.name]
        values, sims = [], []
        for sid, sim in prediction.neighbours:
            row = measured.get(sid, {})
            value = next((row[m] for m in p.measurements if m in row), None)
            if value is not None:
                values.append(value)
                sims.append(max(sim, 0.0))
        if len(values) < 2:
            return None
        w = np.asarray(sims) if sum(sims) > 0 else np.ones(len(sims))
        w = w / w.sum()
        mean = float(np.dot(w, values))
        sd = float(np.sqrt(np.dot(w, (np.asarray(values) - mean) ** 2)))
        return sd * float(np.sqrt(np.sum(w**2)))  # standard error with effective sample size 1 / sum(w^2)

    def _measurement(self, name: str, f: PairFeatures, numbering: EvidenceNumbering) -> MeasurementDelta | None:
        p = PHENOTYPES[name]
        a, b = f.prior.predictions.get(name), f.current.predictions.get(name)
        reported = f.prior_labels.get(name) if f.prior_labels is not None else None
        raw = f.vote_delta(name)
        delta = None if raw is None else self.model.delta(name, raw, f.pair_deltas.get(name))
        if delta is None and reported is None:
            return None
        prior_value = reported if reported is not None else (a.value if a is not None else None)
        spreads = [s for s in (self._spread(a) if a else None, self._spread(b) if b else None) if s is not None]
        sign = self.model.sign(name, delta, f.pair_votes.get(name, 0.0)) if delta is not None else None
        call = None if sign is None else ("increased" if sign > 0 else "decreased" if sign < 0 else "unchanged")
        return MeasurementDelta(
            name=name,
            section=p.section,
            unit=p.unit,
            prior=None if prior_value is None else round(prior_value, 2),
            prior_source="report" if reported is not None else ("vote" if prior_value is not None else None),
            current=None if prior_value is None or delta is None else round(prior_value + delta, 2),
            delta=None if delta is None else round(delta, 2),
            spread=round(float(np.sqrt(np.sum(np.square(spreads)))), 2) if len(spreads) == 2 else None,
            call=call,
            threshold=round(self.model.rule(name).tau * SIGNIFICANT[name], 3),
            evidence=self._evidence_for(name, f, numbering),
        )

    def _finding(
        self, name: str, f: PairFeatures, numbering: EvidenceNumbering, measurements: list[MeasurementDelta]
    ) -> FindingChange | None:
        a, b = f.prior.predictions.get(name), f.current.predictions.get(name)
        delta = f.vote_delta(name)
        if delta is None or a is None or b is None:
            return None
        if f.prior_labels is not None and name in f.prior_labels:
            prior_grade, source = round(f.prior_labels[name]), "report"
        else:
            prior_grade, source = int(a.voted_grade() or 0), "vote"
        pair_vote = f.pair_votes.get(name, 0.0)
        score = self.model.score(name, delta, pair_vote)
        sign = self.model.sign(name, delta, pair_vote)
        voted = b.voted_grade() or 0
        if sign > 0:
            current_grade = min(3, max(prior_grade + 1, voted))
        elif sign < 0:
            current_grade = max(0, min(prior_grade - 1, voted))
        else:
            current_grade = prior_grade
        mode = self.model.graded_mode.get(name, "measured")
        if name in MEASURED_GRADES and mode != "finding":
            measure, grades_of = MEASURED_GRADES[name]
            m = next((m for m in measurements if m.name == measure), None)
            if m is not None and m.current is not None:
                # graded from the compared value when it moved (the measurement then follows, see _agree)
                if m.call in ("increased", "decreased"):
                    current_grade = measured_grade(prior_grade, m.current, grades_of)
                elif mode == "measured":
                    current_grade = prior_grade
        call = call_of(prior_grade, current_grade)
        return FindingChange(
            name=name,
            section=PHENOTYPES[name].section,
            prior_grade=prior_grade,
            prior_source=source,
            current_grade=current_grade,
            call=call,
            score=round(score, 4),
            threshold=self.model.rule(name).tau,
            evidence=self._evidence_for(name, f, numbering),
        )

    def _pairs_shown(self, f: PairFeatures, sections: set[str], numbering: EvidenceNumbering) -> list[ChangePair]:
        """The 3 nearest change pairs of each section that changed (of every section when none did)."""
        from rag.compare.prior import comparison_text
        from rag.draft.studies import ground_truth_text

        out = []
        for section in [s for s in ECHO_SECTIONS if s in f.hits and (not sections or s in sections)]:
            for hit in f.hits[section][:3]:
                number = numbering.add(
                    EvidenceItem(
                        number=0,
                        kind="change_pair",
                        study_id=hit.current_study_id,
                        similarity=round(hit.similarity, 4),
                        role=f"change from study {hit.prior_study_id}",
                        section=section,
                    )
                )
                text = comparison_text(ground_truth_text(self.drafter.store, hit.current_study_id))
                out.append(
                    ChangePair(
                        evidence=number,
                        section=section,
                        prior_study_id=hit.prior_study_id,
                        current_study_id=hit.current_study_id,
                        similarity=round(hit.similarity, 4),
                        comparison_text=text,
                    )
                )
            if not sections and len(out) >= 6:
                break
        return out

    def _views(self, prior_id: int, current_id: int) -> list[ViewPair]:
        from rag.draft.context import clip_summaries

        retriever = self.drafter.retriever
        before = {c.view: c for c in reversed(clip_summaries(retriever, prior_id)) if c.view}
        after = {c.view: c for c in reversed(clip_summaries(retriever, current_id)) if c.view}
        return [ViewPair(view=v, prior=before[v], current=after[v]) for v in sorted(set(before) & set(after))]


def _agree(m: MeasurementDelta, findings: list[FindingChange]) -> MeasurementDelta:
    """A measurement whose graded finding changed is called changed the same way (LVEF down with LV
    function worse), so the narrative never states one without the other."""
    for name, (measure, _) in MEASURED_GRADES.items():
        c = next((c for c in findings if c.name == name), None)
        if measure != m.name or c is None or m.delta is None or c.call == "unchanged":
            continue
        rises = c.current_grade > c.prior_grade
        value_up = rises if name != "lv_systolic_dysfunction" else not rises  # LVEF falls as dysfunction rises
        return m.model_copy(update={"call": "increased" if value_up else "decreased"})
    return m


def compare(
    current: int | str | Path,
    prior: int | str | Path | None = None,
    *,
    config: RagConfig | None = None,
    checkpoint: Path | None = None,
    generator: str = "extractive",
) -> Comparison:
    """Compare a study with the patient's prior one (or with ``prior``); ``generator="openai"`` has the
    configured OpenAI-compatible server write the narrative.

    Example::

        import rag
        c = rag.compare(42)
        print(c.text)
        c.measurement("lvef").delta, c.finding("pericardial_effusion").call

    Build a :class:`Comparer` to compare many studies without reloading.
    """
    return Comparer(config=config, checkpoint=checkpoint).compare(current, prior, generator=generator)
