"""Change calls: when a difference between two studies counts as a change, fitted on validation pairs.

For each finding the signed change score is the difference of the two studies' neighbour votes
(expected grades, current minus prior) plus ``lam`` times the change pairs' vote (the share of similar
other-patient changes in which the finding rose, minus the share in which it fell). For a measurement
the vote difference is divided by the change that counts clinically (``SIGNIFICANT``). A score at or
beyond ``+tau`` is a rise, at or beyond ``-tau`` a fall, anything between unchanged.

``lam`` and ``tau`` are chosen per phenotype on pairs of validation patients (labels from their own
reports) to call the direction of change as often right as possible while calling a change in at most
``max_false_alarm`` of the pairs whose reports say nothing changed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from rag.core.errors import RagError
from rag.vocab.cutoffs import lvef_grades, pasp_grade

__all__ = [
    "GRADED_MODES",
    "MEASURED_GRADES",
    "SIGNIFICANT",
    "ChangeModel",
    "ChangeRule",
    "Sample",
    "call_of",
    "change_sign",
    "measured_grade",
]

SIGNIFICANT: Mapping[str, float] = {
    "lvef": 8.0,  # points of LVEF
    "lvedd": 0.5,  # cm
    "lvesd": 0.5,
    "la_diameter": 0.5,
    "pasp": 10.0,  # mmHg
    "tapse": 5.0,  # mm
    "aortic_root": 0.4,
    "ivc_diameter": 0.5,
}
"""The change of each measurement that counts as a change (a grade step counts for findings)."""

BLENDS = (0.0, 0.25, 0.5, 0.75, 1.0)
LAMBDAS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


def _pasp_grades(value: float) -> tuple[int, ...]:
    return (pasp_grade(value),)


MEASURED_GRADES: Mapping[str, tuple[str, Callable[[float], tuple[int, ...]]]] = {
    "lv_systolic_dysfunction": ("lvef", lvef_grades),
    "pulmonary_hypertension": ("pasp", _pasp_grades),
}
"""Findings graded from a measurement (ASE cut-offs): when the measurement is called changed, the finding's
current grade is the one the compared value allows (else the prior grade stays)."""


GRADED_MODES = ("measured", "finding", "either")
"""How a finding graded from a measurement is called: ``measured`` (its grade follows the compared value
when the measurement is called changed, else stays), ``finding`` (its own rule, like any finding), or
``either`` (the measurement when it moved, else its own rule). Chosen on validation pairs."""


def call_of(before: int, after: int) -> str:
    """new / resolved / worse / better / unchanged for a grade going from ``before`` to ``after``."""
    if before == after:
        return "unchanged"
    if before == 0:
        return "new"
    if after == 0:
        return "resolved"
    return "worse" if after > before else "better"


def measured_grade(prior_grade: int, value: float, grades_of: Callable[[float], tuple[int, ...]]) -> int:
    """The grade a measurement now at ``value`` allows that is nearest the prior grade."""
    return min(grades_of(value), key=lambda g: abs(g - prior_grade))


@dataclass(frozen=True)
class ChangeRule:
    """One phenotype's rule: score = vote difference (+ lam x change-pair vote); |score| >= tau is a change."""

    lam: float = 1.0
    tau: float = 1.0
    accuracy: float | None = None  # on the pairs it was fitted on
    false_alarm: float | None = None
    n: int = 0
    changes: int = 0


@dataclass(frozen=True)
class Sample:
    """One validation pair's features for one phenotype, and the sign of the change its reports state."""

    vote_delta: float
    pair_vote: float
    truth: int  # -1 fell, 0 unchanged, +1 rose
    pair_delta: float | None = None  # measurements: the change pairs' mean change
    true_delta: float | None = None  # measurements: the change the two reports state


def _blend(a: float, r: Sample) -> float:
    return a * r.vote_delta + (1 - a) * (r.pair_delta if r.pair_delta is not None else r.vote_delta)


def change_sign(name: str, before: float | None, after: float | None) -> int | None:
    """-1, 0 or +1: how ``name`` moved between two reported values (None when either is missing)."""
    if before is None or after is None:
        return None
    step = SIGNIFICANT.get(name, 0.5)
    return 0 if abs(after - before) < step else (1 if after > before else -1)


@dataclass
class ChangeModel:
    """Per-phenotype rules; phenotypes without one use ``ChangeRule()`` (one grade step, or one
    significant change, of vote difference)."""

    rules: dict[str, ChangeRule] = field(default_factory=dict)
    blends: dict[str, float] = field(default_factory=dict)
    pair_k: int = 10
    graded_mode: dict[str, str] = field(default_factory=dict)  # MEASURED_GRADES findings: see GRADED_MODES
    max_false_alarm: float = 0.04
    fitted_on: str = "defaults (not fitted)"

    def rule(self, name: str) -> ChangeRule:
        return self.rules.get(name, ChangeRule())

    def delta(self, name: str, vote_delta: float, pair_delta: float | None) -> float:
        """A measurement's change: ``blend`` x the vote difference + (1 - ``blend``) x the change pairs'
        mean change (the vote difference alone when no pair has the measurement)."""
        a = self.blends.get(name, 1.0)
        return vote_delta if pair_delta is None else a * vote_delta + (1 - a) * pair_delta

    def score(self, name: str, vote_delta: float, pair_vote: float) -> float:
        scale = SIGNIFICANT.get(name, 1.0)
        return vote_delta / scale + self.rule(name).lam * pair_vote

    def sign(self, name: str, vote_delta: float, pair_vote: float) -> int:
        """+1, -1 or 0; a measurement never moves by less than half its significant change."""
        s, tau = self.score(name, vote_delta, pair_vote), self.rule(name).tau
        if name in SIGNIFICANT and abs(vote_delta) < SIGNIFICANT[name] / 2:
            return 0
        return 1 if s >= tau else (-1 if s <= -tau else 0)

    @classmethod
    def fit(
        cls,
        samples: Mapping[str, Sequence[Sample]],
        *,
        max_false_alarm: float = 0.04,
        fitted_on: str = "",
    ) -> ChangeModel:
        """Choose ``lam`` and ``tau`` per phenotype, and each measurement's blend (see the module docstring)."""
        model = cls(max_false_alarm=max_false_alarm, fitted_on=fitted_on or "validation pairs")
        adjusted = {}
        for name, rows in samples.items():
            known = [r for r in rows if r.pair_delta is not None and r.true_delta is not None]
            if name in SIGNIFICANT and known:
                errors = {a: float(np.mean([abs(_blend(a, r) - (r.true_delta or 0.0)) for r in known])) for a in BLENDS}
                model.blends[name] = min(errors, key=lambda a: (errors[a], -a))
                rows = [replace(r, vote_delta=model.delta(name, r.vote_delta, r.pair_delta)) for r in rows]
            adjusted[name] = rows
        samples = adjusted
        for name, rows in samples.items():
            if not rows:
                continue
            scale = SIGNIFICANT.get(name, 1.0)
            truth = np.array([r.truth for r in rows])
            vd = np.array([r.vote_delta for r in rows]) / scale
            pv = np.array([r.pair_vote for r in rows])
            best: tuple[float, float, float, float] | None = None  # (accuracy, tau, lam, false alarm)
            best_key: tuple[float, float, float] | None = None
            for lam in LAMBDAS:
                score = vd + lam * pv
                taus = np.unique(np.abs(score))
                for tau in np.append(taus[taus > 1e-6], np.abs(score).max() + 1e-6):
                    said = np.where(score >= tau, 1, np.where(score <= -tau, -1, 0))
                    if name in SIGNIFICANT:
                        said = np.where(np.abs(vd) < 0.5, 0, said)  # the floor of :meth:`sign`
                    unchanged = truth == 0
                    fa = float((said[unchanged] != 0).mean()) if unchanged.any() else 0.0
                    if fa > max_false_alarm:
                        continue
                    acc = float((said == truth).mean())
                    key = (acc, float(tau), -lam)  # most often right, then the most cautious, then the simplest
                    if best_key is None or key > best_key:
                        best_key, best = key, (acc, float(tau), lam, fa)
            if not (truth != 0).any():
                # nothing changed in these pairs: no evidence for a threshold, so the default one step,
                # or beyond every score seen here when that is wider
                widest = float(np.abs(vd).max()) + 1e-6
                model.rules[name] = ChangeRule(
                    lam=0.0, tau=max(1.0, widest), accuracy=1.0, false_alarm=0.0, n=len(rows)
                )
                continue
            if best is not None:
                model.rules[name] = ChangeRule(
                    lam=best[2],
                    tau=round(best[1], 6),
                    accuracy=best[0],
                    false_alarm=best[3],
                    n=len(rows),
                    changes=int((truth != 0).sum()),
                )
        return model

    def save(self, path: Path) -> Path:
        data: dict[str, object] = {"max_false_alarm": self.max_false_alarm, "fitted_on": self.fitted_on}
        data["blends"] = self.blends
        data["pair_k"] = self.pair_k
        data["graded_mode"] = self.graded_mode
        data["rules"] = {k: asdict(v) for k, v in sorted(self.rules.items())}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> ChangeModel:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            rules = {k: ChangeRule(**v) for k, v in data["rules"].items()}
            blends = {k: float(v) for k, v in data.get("blends", {}).items()}
            return cls(
                rules,
                blends,
                int(data.get("pair_k", 10)),
                {k: str(v) for k, v in data.get("graded_mode", {}).items()},
                float(data["max_false_alarm"]),
                str(data["fitted_on"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise RagError(f"cannot read change thresholds {path}: {e}; refit with `rag compare fit`") from e
