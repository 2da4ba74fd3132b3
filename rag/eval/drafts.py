"""How well drafts agree with the studies' own reports, on patients no fitted part has seen.

For each study the draft is compared with the study's stored report, section by section: for every
finding of the phenotype table (MR, AS, effusion, LV dilation, ...) the grade a text states (0
none/normal, 1 mild, 2 moderate, 3 severe) is read with the same rules (:mod:`rag.vocab.grades`)
from the draft and from the report. Per finding and study:

- ``grade``: both state the same grade;
- ``presence``: both say present, or both say absent (grade 0 vs > 0);
- ``abnormal_found``: among findings the report grades >= 1, the draft states it too;
  ``moderate_found`` the same among findings graded >= 2;
- ``consistent``: per drafted sentence, it contradicts no neighbour vote of its section.

LVEF: absolute error of the drafted (voted) value against the report's. Every rate comes with a 95 %
bootstrap interval over studies (findings of one study are not independent), and beside the
baselines: ``all normal`` (every finding graded 0) and ``prior`` (every finding at the training
studies' most frequent grade; LVEF at the training mean).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select

from rag.generate.report import Report
from rag.retrieve.retriever import CaseRetriever
from rag.retrieve.thresholds import Thresholds
from rag.store import Report as StoredReport
from rag.store import ReportSection, Store
from rag.vocab.findings import PHENOTYPES
from rag.vocab.grades import statement_grade

__all__ = ["DraftQuality", "Rate", "draft_quality", "report_grades", "score_report", "stored_grades"]

FINDINGS = tuple(p for p in PHENOTYPES.values() if p.kind == "finding" and p.rule is not None)
METRICS = ("grade", "presence", "abnormal_found", "moderate_found", "consistent")
Grades = dict[str, dict[str, int]]
"""Section name -> {finding name: grade}."""


def report_grades(text: str, section: str) -> dict[str, int]:
    """The grade ``text`` states of each finding of ``section``."""
    out = {}
    for p in FINDINGS:
        if p.section == section and p.rule is not None:
            out[p.name] = statement_grade(text, p.rule)
    return out


def stored_grades(store: Store, study_id: int) -> Grades:
    """The grades the study's stored report states, per section."""
    with store.session() as s:
        rows = s.execute(
            select(ReportSection.name, ReportSection.text)
            .join(StoredReport, ReportSection.report_id == StoredReport.id)
            .where(StoredReport.study_id == study_id)
        ).all()
    return {str(n): report_grades(str(t), str(n)) for n, t in rows}


def score_grades(got: Callable[[str, str], int], truth: Grades) -> dict[str, list[int]]:
    """Per metric, one 0/1 outcome per finding (``abnormal_found`` only for findings the truth grades >= 1).

    Args:
        got: (finding name, section) -> the grade the draft (or a baseline) states.
    """
    out: dict[str, list[int]] = {m: [] for m in METRICS}
    for p in FINDINGS:
        want = truth.get(p.section, {}).get(p.name, 0)
        have = got(p.name, p.section)
        out["grade"].append(int(have == want))
        out["presence"].append(int((have > 0) == (want > 0)))
        if want > 0:
            out["abnormal_found"].append(int(have > 0))
        if want > 1:
            out["moderate_found"].append(int(have > 0))
    return out


def score_report(
    report: Report, truth: Grades, voted: Callable[[str], dict[str, int]] | None = None
) -> dict[str, list[int]]:
    """:func:`score_grades` of a drafted report against the stored report's grades.

    With ``voted`` (section -> the neighbour vote's grades, ``DraftContext.voted_grades``), also
    ``consistent``: one outcome per drafted sentence, 1 when it contradicts no vote of its section.
    """

    def got(name: str, section: str) -> int:
        drafted = report.section(section)
        return report_grades(drafted.text, section).get(name, 0) if drafted is not None else 0

    out = score_grades(got, truth)
    if voted is not None:
        from rag.generate.consistency import contradictions

        for section in report.sections:
            votes = voted(section.name)
            out["consistent"] += [int(not contradictions(s.text, votes)) for s in section.sentences]
    return out


@dataclass(frozen=True)
class Rate:
    """A mean over studies with its 95 % bootstrap interval (NaN when there is nothing to average)."""

    mean: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        if math.isnan(self.mean):
            return "-"
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


def rate(per_study: Sequence[Sequence[int | float]], *, draws: int = 2000, seed: int = 0) -> Rate:
    """The pooled mean of per-study outcomes and its 95 % interval, resampling studies with replacement."""
    groups = [np.asarray(g, dtype=np.float64) for g in per_study if len(g)]
    if not groups:
        return Rate(float("nan"), float("nan"), float("nan"), 0)
    sums = np.array([g.sum() for g in groups])
    sizes = np.array([len(g) for g in groups])
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(groups), size=(draws, len(groups)))
    boot = sums[picks].sum(axis=1) / sizes[picks].sum(axis=1)
    low, high = np.percentile(boot, [2.5, 97.5])
    return Rate(float(sums.sum() / sizes.sum()), float(low), float(high), int(sizes.sum()))


@dataclass
class DraftQuality:
    """Outcomes per method (drafting methods and baselines), per study, and the LVEF errors."""

    studies: list[int]
    outcomes: dict[str, dict[str, list[list[int]]]] = field(default_factory=dict)
    lvef_errors: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, method: str, scores: Mapping[str, list[int]]) -> None:
        table = self.outcomes.setdefault(method, {m: [] for m in METRICS})
        for metric in METRICS:
            table[metric].append(list(scores[metric]))

    def rates(self, method: str) -> dict[str, Rate]:
        return {metric: rate(self.outcomes[method][metric]) for metric in METRICS}

    def lines(self) -> list[str]:
        """A table: one row per method, each rate with its interval; LVEF MAE per method."""
        out = [f"{len(self.studies)} held-out studies; rates pooled over findings, 95 % intervals over studies"]
        out += self.notes
        heads = ("grade agree", "present/absent", "abnormal stated", "moderate+ stated", "no contradiction")
        out.append(f"{'method':15s} " + " ".join(f"{h:>24s}" for h in heads))
        for method in self.outcomes:
            r = self.rates(method)
            out.append(f"{method:15s} " + " ".join(f"{r[m]!s:>24s}" for m in METRICS))
        for method, errors in self.lvef_errors.items():
            if errors:
                out.append(f"LVEF MAE {method}: {statistics.fmean(errors):.2f} points ({len(errors)} studies)")
        return out


def prior_grades(training: Iterable[Grades]) -> dict[str, int]:
    """Each finding's most frequent grade among the training studies' reports."""
    truths = list(training)
    out = {}
    for p in FINDINGS:
        seen = Counter(t.get(p.section, {}).get(p.name, 0) for t in truths)
        out[p.name] = seen.most_common(1)[0][0] if seen else 0
    return out


def add_baselines(quality: DraftQuality, truth: Grades, prior: Mapping[str, int]) -> None:
    """Score the ``all normal`` and ``prior`` baselines of one study into ``quality``."""
    quality.add("all normal", score_grades(lambda name, section: 0, truth))
    quality.add("prior", score_grades(lambda name, section: prior[name], truth))


def draft_quality(
    retriever: CaseRetriever,
    test: Sequence[int],
    training: Sequence[int],
    *,
    k: int = 5,
    vote_k: int = 50,
    thresholds: Thresholds | None = None,
) -> DraftQuality:
    """Draft every test study and score it, beside the all-normal and prior baselines.

    Methods: ``top-1 copy`` (each section's best neighbour text, as EchoPrime), ``vote-agreeing``
    (the default extractive generator: texts that agree with the vote, contradictions replaced,
    abnormal votes stated). ``retriever`` should search the training (reference) studies only.
    """
    from rag.draft.context import gather_context
    from rag.generate.extractive import ExtractiveGenerator
    from rag.retrieve.voting import NeighbourVoter

    voter = NeighbourVoter(retriever, k=vote_k, thresholds=thresholds)
    prior = prior_grades(stored_grades(retriever.store, s) for s in training)
    measured = retriever.catalog.measurements
    train_lvef = [measured[s]["lvef"] for s in training if "lvef" in measured.get(s, {})]
    mean_lvef = statistics.fmean(train_lvef) if train_lvef else float("nan")
    methods = {"top-1 copy": ExtractiveGenerator(agree_with_votes=False), "vote-agreeing": ExtractiveGenerator()}
    quality = DraftQuality(list(test), lvef_errors={"neighbour vote": [], "training mean": []})
    if thresholds is not None:
        fitted = ", ".join(f"{n} {v:.2f}" for n, v in sorted(thresholds.values.items()))
        quality.notes.append(f"vote thresholds ({thresholds.criterion}, fitted on validation patients): {fitted}")
        if thresholds.moderate:
            fitted = ", ".join(f"{n} {v:.2f}" for n, v in sorted(thresholds.moderate.items()))
            quality.notes.append(f"moderate-or-worse thresholds ({thresholds.moderate_criterion}): {fitted}")
    else:
        quality.notes.append("no vote thresholds: each finding's grade is its most probable grade among the neighbours")
    for study in test:
        truth = stored_grades(retriever.store, study)
        context = gather_context(retriever, voter, study, k=k, kb=None)
        for name, generator in methods.items():
            quality.add(name, score_report(generator.generate(context), truth, context.voted_grades))
        add_baselines(quality, truth, prior)
        lvef = measured.get(study, {}).get("lvef")
        voted = context.predictions.predictions["lvef"].value
        if lvef is not None and voted is not None:
            quality.lvef_errors["neighbour vote"].append(abs(voted - lvef))
            quality.lvef_errors["training mean"].append(abs(mean_lvef - lvef))
    return quality
