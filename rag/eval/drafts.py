"""How well drafts agree with the studies' own reports, on patients no fitted part has seen.

For each study the draft is compared with the study's stored report, section by section: for every
finding of the phenotype table (MR, AS, effusion, LV dilation, ...) the grade a text states (0
none/normal, 1 mild, 2 moderate, 3 severe) is read with the same rules (:mod:`rag.vocab.grades`)
from the draft and from the report. Per finding and study:

- ``grade``: both state the same grade;
- ``presence``: both say present, or both say absent (grade 0 vs > 0);
- ``abnormal_found``: among findings the report grades >= 1, the draft states it too.

LVEF: absolute error of the drafted (voted) value against the report's. Every rate comes with a 95 %
bootstrap interval over studies (findings of one study are not independent), and beside the
baselines: ``all normal`` (every finding graded 0) and ``prior`` (every finding at the training
studies' most frequent grade; LVEF at the training mean).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select

from rag.generate.report import Report
from rag.store import Report as StoredReport
from rag.store import ReportSection, Store
from rag.vocab.findings import PHENOTYPES
from rag.vocab.grades import statement_grade

__all__ = ["DraftQuality", "Rate", "report_grades", "score_report", "stored_grades"]

FINDINGS = tuple(p for p in PHENOTYPES.values() if p.kind == "finding" and p.rule is not None)
METRICS = ("grade", "presence", "abnormal_found")
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
    return out


def score_report(report: Report, truth: Grades) -> dict[str, list[int]]:
    """:func:`score_grades` of a drafted report against the stored report's grades."""

    def got(name: str, section: str) -> int:
        drafted = report.section(section)
        return report_grades(drafted.text, section).get(name, 0) if drafted is not None else 0

    return score_grades(got, truth)


@dataclass(frozen=True)
class Rate:
    """A mean over studies with its 95 % bootstrap interval (NaN when there is nothing to average)."""

    mean: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
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

    def add(self, method: str, scores: Mapping[str, list[int]]) -> None:
        table = self.outcomes.setdefault(method, {m: [] for m in METRICS})
        for metric in METRICS:
            table[metric].append(list(scores[metric]))

    def rates(self, method: str) -> dict[str, Rate]:
        return {metric: rate(self.outcomes[method][metric]) for metric in METRICS}

    def lines(self) -> list[str]:
        """A table: one row per method, each rate with its interval; LVEF MAE per method."""
        out = [f"{len(self.studies)} held-out studies; rates pooled over findings, 95 % intervals over studies"]
        out.append(f"{'method':15s} {'grade agree':>24s} {'present/absent':>24s} {'abnormal found':>24s}")
        for method in self.outcomes:
            r = self.rates(method)
            out.append(f"{method:15s} {r['grade']!s:>24s} {r['presence']!s:>24s} {r['abnormal_found']!s:>24s}")
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
