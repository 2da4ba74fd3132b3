"""Fit the change thresholds on pairs of validation patients, never on the patients they are tested on.

Labels come from the two studies' own reports (a grade step of a finding, a significant change of a
measurement), so any workspace with reported follow-up studies can fit them; the simulated archive's
truth is used only to score (:mod:`rag.eval.compare`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from rag.compare.calls import GRADED_MODES, MEASURED_GRADES, ChangeModel, Sample, call_of, change_sign
from rag.compare.comparer import FINDINGS, MEASUREMENTS, Comparer
from rag.compare.pairs import consecutive_pairs

if TYPE_CHECKING:
    from rag.index.catalog import Catalog

__all__ = ["fit_change_model", "patient_pairs"]


def patient_pairs(catalog: Catalog, studies: Iterable[int], patients: set[int] | None = None) -> list[tuple[int, int]]:
    """Consecutive (prior, current) pairs among ``studies``, of ``patients`` only when given."""
    rows = []
    for sid in studies:
        info = catalog.study(int(sid))
        if patients is None or info.patient_id in patients:
            rows.append((info.study_id, info.patient_id, info.study_date))
    return consecutive_pairs(rows)


PAIR_KS = (5, 10, 20, 40)


def fit_change_model(
    comparer: Comparer,
    pairs: Iterable[tuple[int, int]],
    *,
    max_false_alarm: float = 0.04,
    pair_ks: Iterable[int] = PAIR_KS,
    progress: Callable[[int], None] | None = None,
) -> ChangeModel:
    """Thresholds from ``pairs`` (their reports' labels), for each number of change pairs in ``pair_ks``;
    the one whose rules call the phenotypes with 10 or more changes best on those pairs is kept. Pairs
    whose studies lack a report are skipped."""
    pairs = list(pairs)
    best: tuple[float, ChangeModel] | None = None
    for k in pair_ks:
        comparer.model = ChangeModel(pair_k=k)
        model = _fit(comparer, pairs, max_false_alarm=max_false_alarm, progress=progress)
        model.pair_k = k
        rules = [r.accuracy for r in model.rules.values() if r.changes >= 10 and r.accuracy is not None]
        score = float(sum(rules) / len(rules)) if rules else 0.0
        if best is None or score > best[0]:
            best = (score, model)
    assert best is not None, "pair_ks is empty"
    comparer.model = best[1]
    _choose_graded_modes(comparer, pairs, max_false_alarm)
    return best[1]


def _choose_graded_modes(comparer: Comparer, pairs: list[tuple[int, int]], max_false_alarm: float) -> None:
    """For each finding graded from a measurement, the mode (``GRADED_MODES``) whose calls on ``pairs``
    are most often right with at most ``max_false_alarm`` false alarms (ties: the first listed)."""
    labelled = []
    for prior, current in pairs:
        before, after = comparer.report_labels(prior), comparer.report_labels(current)
        if before is not None and after is not None:
            labelled.append((prior, current, before, after))
    model = comparer.model
    for name in MEASURED_GRADES:
        scores: dict[str, float] = {}
        for mode in GRADED_MODES:
            model.graded_mode[name] = mode
            right = alarms = unchanged = n = 0
            for prior, current, before, after in labelled:
                if name not in before or name not in after:
                    continue
                want = call_of(round(before[name]), round(after[name]))
                got = comparer.compare(current, prior).finding(name)
                said = got.call if got is not None else "unchanged"
                n += 1
                right += said == want
                if want == "unchanged":
                    unchanged += 1
                    alarms += said != "unchanged"
            if n and (not unchanged or alarms / unchanged <= max_false_alarm):
                scores[mode] = right / n
        model.graded_mode[name] = (
            max(scores, key=lambda m: (scores[m], -GRADED_MODES.index(m))) if scores else "measured"
        )


def _fit(
    comparer: Comparer,
    pairs: list[tuple[int, int]],
    *,
    max_false_alarm: float,
    progress: Callable[[int], None] | None,
) -> ChangeModel:
    samples: dict[str, list[Sample]] = {name: [] for name in (*FINDINGS, *MEASUREMENTS)}
    used = 0
    for prior, current in pairs:
        before, after = comparer.report_labels(prior), comparer.report_labels(current)
        if before is None or after is None:
            continue
        f = comparer.features(prior, current)
        used += 1
        for name in samples:
            truth = change_sign(name, before.get(name), after.get(name))
            delta = f.vote_delta(name)
            if truth is not None and delta is not None:
                true_delta = after[name] - before[name] if name in before and name in after else None
                pair_delta = f.pair_deltas.get(name)
                samples[name].append(Sample(delta, f.pair_votes.get(name, 0.0), truth, pair_delta, true_delta))
        if progress is not None:
            progress(1)
    return ChangeModel.fit(
        samples,
        max_false_alarm=max_false_alarm,
        fitted_on=f"{used} reported follow-up pairs of patients apart from those compared",
    )
