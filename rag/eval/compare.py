"""The comparison benchmark on a simulated archive's held-out patients, in TemMed-Bench's three forms.

Thresholds (the change rules, and the embedding-shift cut-off of the no-retrieval arm) are fitted on
the consecutive study pairs of the encoder's training patients, labelled by their own reports; every
figure comes from the pairs of the patients the encoder held out, scored against the archive's truth.

- calls: per finding, the call (new / resolved / worse / better / unchanged) against the truth's grades,
  its accuracy, the changes it had to find, and false alarms on unchanged pairs; LVEF delta MAE.
- (a) yes/no questions about change ("Has the mitral regurgitation worsened?"): accuracy, macro F1.
- (b) the narrative against the report's own comparison line: BLEU-1, ROUGE-L, METEOR as TemMed-Bench.
- (c) pair selection: which of three pairs of studies shows the stated change (chance 1/3).

Retrieval on: neighbour votes of both studies and the change pairs. Retrieval off: the two studies'
own section embeddings only (a change is called where a section moved more than a fitted cut-off;
it cannot say which way), and the narrative "No significant change".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.compare.calls import call_of
from rag.compare.comparer import FINDINGS, Comparer, PairFeatures
from rag.compare.fit import fit_change_model, patient_pairs
from rag.compare.prior import comparison_text
from rag.compare.result import Comparison
from rag.eval.drafts import Rate, rate
from rag.simulate.labels import TRUTH_GRADES
from rag.vocab.findings import PHENOTYPES

__all__ = ["CompareBenchmark", "evaluate_comparison", "truth_call"]

OFF_TEXT = "No significant change."


def truth_call(before: int, after: int) -> str:
    """The call the truth's grades make (:func:`rag.compare.calls.call_of`)."""
    return call_of(before, after)


@dataclass
class PairCase:
    prior: int
    current: int
    truth_before: Mapping[str, str]
    truth_after: Mapping[str, str]
    features: PairFeatures
    comparison: Comparison


@dataclass
class CompareBenchmark:
    """Every figure of one run, and what it was fitted on."""

    fitted_on: str
    train_pairs: int
    test_pairs: int
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    lvef: dict[str, Any] = field(default_factory=dict)
    yes_no: dict[str, dict[str, Any]] = field(default_factory=dict)
    text: dict[str, dict[str, Any]] = field(default_factory=dict)
    pair_selection: dict[str, dict[str, Any]] = field(default_factory=dict)
    shift_cutoffs: dict[str, float] = field(default_factory=dict)
    example: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(json.dumps(self.__dict__, default=str))
        return data

    def markdown(self) -> str:
        def r(d: Mapping[str, Any]) -> str:
            return f"{d['mean']:.3f} [{d['low']:.3f}, {d['high']:.3f}]"

        lines = [
            "# Comparison with the prior study: held-out patients",
            "",
            f"{self.test_pairs} consecutive study pairs of held-out patients scored against the archive's truth; "
            f"thresholds fitted on {self.train_pairs} pairs of training patients ({self.fitted_on}). "
            "95 % intervals resample pairs.",
            "",
            "## Change calls per finding (new / resolved / worse / better / unchanged)",
            "",
            "| finding | changes | call accuracy | 'all unchanged' | changes found (right call) | false alarms |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, c in self.calls.items():
            lines.append(
                f"| {name} | {c['changes']} | {r(c['accuracy'])} | {c['all_unchanged']:.3f} | "
                f"{c['found']}/{c['changes']} | {c['false_alarms']}/{c['unchanged']} ({c['false_alarm_rate']:.3f}) |"
            )
        pooled = self.calls_pooled()
        lines += [
            "",
            f"Pooled false-alarm rate on unchanged findings: {pooled['false_alarms']}/{pooled['unchanged']} "
            f"= {pooled['rate']:.3f}.",
            "",
            "## LVEF change",
            "",
            f"{self.lvef['n']} pairs: delta MAE {r(self.lvef['mae'])} points (the two votes' difference blended "
            "with the change pairs' change, as fitted); "
            f"current vote minus the prior's reported value: {self.lvef['mae_vs_report']:.2f}; "
            f"'no change' baseline: {self.lvef['mae_zero']:.2f}.",
            "",
            "## TemMed-Bench forms, retrieval on and off",
            "",
            "| form | retrieval on | retrieval off | baseline |",
            "|---|---:|---:|---:|",
        ]
        on, off = self.yes_no["on"], self.yes_no["off"]
        lines.append(
            f"| (a) yes/no accuracy ({on['n']} questions) | {r(on['accuracy'])} | {r(off['accuracy'])} | "
            f"always 'no' {on['always_no']:.3f} |"
        )
        lines.append(f"| (a) macro F1 | {on['macro_f1']:.3f} | {off['macro_f1']:.3f} | |")
        for metric in ("bleu1", "rouge_l", "meteor"):
            a, b = self.text["on"][metric], self.text["off"][metric]
            lines.append(f"| (b) {metric} x100 | {a['mean']:.2f} | {b['mean']:.2f} | |")
        pon, poff = self.pair_selection["on"], self.pair_selection["off"]
        lines.append(
            f"| (c) pair selection ({pon['n']}) | {r(pon['accuracy'])} | {r(poff['accuracy'])} | chance 0.333 |"
        )
        return "\n".join(lines) + "\n"

    def calls_pooled(self) -> dict[str, float]:
        fa = sum(int(c["false_alarms"]) for c in self.calls.values())
        n = sum(int(c["unchanged"]) for c in self.calls.values())
        return {"false_alarms": fa, "unchanged": n, "rate": fa / n if n else float("nan")}


def _rate(outcomes: Sequence[float], groups: Sequence[int]) -> dict[str, Any]:
    by: dict[int, list[float]] = {}
    for g, o in zip(groups, outcomes, strict=True):
        by.setdefault(g, []).append(o)
    r: Rate = rate(list(by.values()))
    return {"mean": r.mean, "low": r.low, "high": r.high, "n": r.n}


def _truth_grades(row: Mapping[str, str]) -> dict[str, int]:
    return {name: fn(row) for name, fn in TRUTH_GRADES.items()}


def _fit_shift_cutoffs(comparer: Comparer, pairs: Sequence[tuple[int, int]]) -> dict[str, float]:
    """Per section, the embedding shift above which the no-retrieval arm calls a change (best accuracy
    against the training pairs' reports)."""
    shifts: dict[str, list[tuple[float, int]]] = {}
    for prior, current in pairs:
        before, after = comparer.report_labels(prior), comparer.report_labels(current)
        if before is None or after is None:
            continue
        f = comparer.features(prior, current)
        for name in FINDINGS:
            s = f.shift(PHENOTYPES[name].section)
            if s is not None and name in before and name in after:
                shifts.setdefault(PHENOTYPES[name].section, []).append((s, int(before[name] != after[name])))
    out = {}
    for section, rows in shifts.items():
        x = np.array([s for s, _ in rows])
        y = np.array([c for _, c in rows])
        candidates = np.append(np.unique(x), x.max() + 1e-6)
        accs = [((x >= t) == y).mean() for t in candidates]
        out[section] = float(candidates[int(np.argmax(accs))])
    return out


def evaluate_comparison(
    comparer: Comparer,
    truth: Mapping[int, Mapping[str, str]],
    held_out_patients: set[int],
    *,
    seed: int = 0,
    echo: Callable[[str], None] = print,
) -> tuple[CompareBenchmark, list[PairCase]]:
    """Fit on the training patients' pairs, score the held-out patients' pairs (see the module docstring)."""
    from rag.eval.textmetrics import report_scores
    from rag.eval.vqa.runner import macro_scores

    retriever = comparer.drafter.retriever
    catalog = retriever.catalog
    embedded = [s for s in truth if s in retriever.studies]
    train_patients = {catalog.study(s).patient_id for s in embedded} - held_out_patients
    train = patient_pairs(catalog, embedded, train_patients)
    test = patient_pairs(catalog, embedded, held_out_patients)
    echo(f"fitting on {len(train)} pairs of {len(train_patients)} training patients")
    comparer.model = fit_change_model(comparer, train)
    cutoffs = _fit_shift_cutoffs(comparer, train)
    echo(f"scoring {len(test)} pairs of {len(held_out_patients)} held-out patients")
    cases = [PairCase(a, b, truth[a], truth[b], comparer.features(a, b), comparer.compare(b, a)) for a, b in test]
    bench = CompareBenchmark(comparer.model.fitted_on, len(train), len(test), shift_cutoffs=cutoffs)

    # calls per finding
    for name in TRUTH_GRADES:
        outcomes, groups, changes, found, fa, unchanged = [], [], 0, 0, 0, 0
        for n, case in enumerate(cases):
            want = truth_call(TRUTH_GRADES[name](case.truth_before), TRUTH_GRADES[name](case.truth_after))
            got = case.comparison.finding(name)
            said = got.call if got is not None else "unchanged"
            outcomes.append(float(said == want))
            groups.append(n)
            if want == "unchanged":
                unchanged += 1
                fa += int(said != "unchanged")
            else:
                changes += 1
                found += int(said == want)
        bench.calls[name] = {
            "changes": changes,
            "unchanged": unchanged,
            "found": found,
            "false_alarms": fa,
            "false_alarm_rate": fa / unchanged if unchanged else float("nan"),
            "accuracy": _rate(outcomes, groups),
            "all_unchanged": unchanged / len(cases) if cases else float("nan"),
        }

    # LVEF delta
    errors, vs_report, zero = [], [], []
    for case in cases:
        m = case.comparison.measurement("lvef")
        true_delta = float(case.truth_after["lvef"]) - float(case.truth_before["lvef"])
        b = case.features.current.predictions.get("lvef")
        if m is None or m.delta is None or b is None or b.value is None:
            continue
        errors.append(abs(m.delta - true_delta))
        vs_report.append(abs((b.value - float(case.truth_before["lvef"])) - true_delta))
        zero.append(abs(true_delta))
    bench.lvef = {
        "n": len(errors),
        "mae": _rate(errors, list(range(len(errors)))),
        "mae_vs_report": float(np.mean(vs_report)) if vs_report else float("nan"),
        "mae_zero": float(np.mean(zero)) if zero else float("nan"),
    }

    # (a) yes/no questions
    rng = np.random.default_rng(seed)
    questions: list[tuple[int, str, int, str]] = []  # (case, finding, direction asked, truth yes/no)
    for n, case in enumerate(cases):
        for name in TRUTH_GRADES:
            before, after = TRUTH_GRADES[name](case.truth_before), TRUTH_GRADES[name](case.truth_after)
            if before != after:
                d = 1 if after > before else -1
                questions += [(n, name, d, "yes"), (n, name, -d, "no")]
            elif rng.random() < 0.1:
                questions.append((n, name, int(rng.choice([-1, 1])), "no"))
    answers: dict[str, list[str]] = {"on": [], "off": []}
    for n, name, d, _ in questions:
        case = cases[n]
        got = case.comparison.finding(name)
        moved = 0 if got is None else int(np.sign(got.current_grade - got.prior_grade))
        answers["on"].append("yes" if moved == d else "no")
        section = PHENOTYPES[name].section
        shift = case.features.shift(section)
        off_changed = shift is not None and section in cutoffs and shift >= cutoffs[section]
        answers["off"].append("yes" if off_changed else "no")
    truth_yn = [q[3] for q in questions]
    for arm, replies in answers.items():
        f1, _, _ = macro_scores(list(zip(truth_yn, replies, strict=True)))
        bench.yes_no[arm] = {
            "n": len(questions),
            "accuracy": _rate(
                [float(a == t) for a, t in zip(replies, truth_yn, strict=True)], [q[0] for q in questions]
            ),
            "macro_f1": f1,
            "always_no": truth_yn.count("no") / len(truth_yn) if truth_yn else float("nan"),
        }

    # (b) the narrative against the report's comparison line
    from rag.draft.studies import ground_truth_text

    for arm in ("on", "off"):
        scores: dict[str, list[float]] = {"bleu1": [], "rouge_l": [], "meteor": []}
        for case in cases:
            reference = comparison_text(ground_truth_text(comparer.drafter.store, case.current))
            if not reference:
                continue
            written = _without_lead(case.comparison.text) if arm == "on" else OFF_TEXT
            for k, v in report_scores(reference, written).items():
                scores[k].append(v)
        bench.text[arm] = {
            k: {"mean": 100 * float(np.mean(v)) if v else float("nan"), "n": len(v)} for k, v in scores.items()
        }

    # (c) pair selection
    picks: dict[str, list[float]] = {"on": [], "off": []}
    for n, case in enumerate(cases):
        for name in TRUTH_GRADES:
            before, after = TRUTH_GRADES[name](case.truth_before), TRUTH_GRADES[name](case.truth_after)
            if before == after:
                continue
            d = 1 if after > before else -1
            others = [
                m
                for m, o in enumerate(cases)
                if m != n and np.sign(TRUTH_GRADES[name](o.truth_after) - TRUTH_GRADES[name](o.truth_before)) != d
            ]
            if len(others) < 2:
                continue
            options = [n, *(int(x) for x in rng.choice(others, 2, replace=False))]
            section = PHENOTYPES[name].section
            on = [d * _score(comparer, cases[m], name) for m in options]
            off = [cases[m].features.shift(section) or 0.0 for m in options]
            picks["on"].append(float(int(np.argmax(on)) == 0))
            picks["off"].append(float(int(np.argmax(off)) == 0))
    for arm, outcomes in picks.items():
        bench.pair_selection[arm] = {"n": len(outcomes), "accuracy": _rate(outcomes, list(range(len(outcomes))))}
    return bench, cases


def _score(comparer: Comparer, case: PairCase, name: str) -> float:
    delta = case.features.vote_delta(name)
    if delta is None:
        return 0.0
    return comparer.model.score(name, delta, case.features.pair_votes.get(name, 0.0))


def _without_lead(text: str) -> str:
    """The narrative without "Compared with the study of <date> (<n> days earlier): "."""
    head, sep, rest = text.partition("): ")
    return rest if sep and head.startswith("Compared with") else text


def lvef_fall_example(cases: Sequence[PairCase]) -> PairCase | None:
    """The held-out pair whose true LVEF fell most (for the documented example)."""
    falls = [(float(c.truth_after["lvef"]) - float(c.truth_before["lvef"]), i) for i, c in enumerate(cases)]
    falls = [f for f in falls if f[0] <= -8]
    return cases[min(falls)[1]] if falls else None


def write_benchmark(bench: CompareBenchmark, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "comparison.json", out / "comparison.md"]
    paths[0].write_text(json.dumps(bench.to_dict(), indent=2) + "\n", encoding="utf-8")
    paths[1].write_text(bench.markdown(), encoding="utf-8")
    return paths
