"""Scoring neighbour votes against the ground truth of a simulated archive, for several weight tables.

Patients are split three ways (test / validation / training, by patient). The training and
validation studies form the reference database; the learned table is fitted on the training patients
(held-out checks on the validation ones); each table — uniform, default, learned — then predicts every
test study from its k nearest report sections in the reference database, and the predictions are
compared with the archive's truth (``truth/studies.csv``):

- continuous: mean absolute error (LVEF in %, LVEDD in cm, PASP in mmHg);
- findings: AUROC of the vote probability against truth grade >= 1 and >= 2 (rank-based,
  ties counted as one half; left out when the test studies hold one class only).

A baseline row predicts every test study's LVEF as the mean stored LVEF of the training studies.

A fixed reference database matters: were the test studies searched among all other patients, a
neighbourhood covering most of a small archive would vote the archive's prevalence without the query's
own patient — lower for the patients who have the finding — and push AUROCs below 0.5.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.core.errors import RetrievalError
from rag.core.stats import auroc, auroc_interval
from rag.retrieve.fit import FitResult, fit_view_weights, split_patients
from rag.retrieve.retriever import CaseRetriever
from rag.retrieve.voting import NeighbourVoter
from rag.retrieve.weights import ViewWeights
from rag.simulate.labels import TRUTH_GRADES, TRUTH_VALUES
from rag.vocab.findings import PHENOTYPES

__all__ = [
    "TRUTH_GRADES",
    "TRUTH_VALUES",
    "EvaluationReport",
    "TableScore",
    "evaluate_archive",
    "truth_by_study",
]


def truth_by_study(retriever: CaseRetriever, archive: Path, pseudonym_key: bytes) -> dict[int, dict[str, str]]:
    """Stored study ID -> its row of ``truth/studies.csv``, matched through the keyed hash of the Study UID.

    Args:
        pseudonym_key: the key the archive was ingested with (``rag.ingest.pipeline.resolve_key``).
    """
    from rag.train.truth import stored_truth

    matched = stored_truth(retriever.store, Path(archive), pseudonym_key)
    if not matched:
        raise RetrievalError(
            f"no stored study matches the truth of {archive}: ingest that archive with the same pseudonymisation key"
        )
    return matched


@dataclass(frozen=True)
class TableScore:
    """The scores of one weight table on the test studies."""

    weights: str
    fingerprint: str
    mae: dict[str, float]
    n_mae: dict[str, int]
    aurocs: dict[str, float]
    support: dict[str, tuple[int, int]]
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    """95 % bootstrap interval of each AUROC, resampling patients."""
    outcomes: dict[str, tuple[list[float], list[int]]] = field(default_factory=dict)
    """Per AUROC key, the vote scores and true labels of the test studies (for ROC curves)."""
    pairs: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    """Per continuous phenotype, (predicted, true) of every test study with a prediction."""

    @property
    def lvef_mae(self) -> float:
        return self.mae.get("lvef", float("nan"))

    def mean_auroc(self, level: int | None = None) -> float:
        """Mean of the defined AUROCs (``level`` 1 or 2 keeps only ``>=level`` ones)."""
        values = [
            v for k, v in self.aurocs.items() if not math.isnan(v) and (level is None or k.endswith(f">={level}"))
        ]
        return float(np.mean(values)) if values else float("nan")


@dataclass(frozen=True)
class EvaluationReport:
    """Scores of every table, the split sizes, and the baseline."""

    tables: list[TableScore]
    n_test: int
    n_val: int
    n_train: int
    k: int
    seed: int
    baseline_lvef_mae: float
    fit: FitResult | None = None
    notes: list[str] = field(default_factory=list)
    temperature: float | None = None
    test_studies: list[int] = field(default_factory=list)
    reference_studies: list[int] = field(default_factory=list)
    """The studies searched for neighbours (training and validation patients)."""
    validation_studies: list[int] = field(default_factory=list)
    """The validation patients' studies (part of the reference set; thresholds are fitted on them)."""
    learned: ViewWeights | None = None

    def table(self) -> list[list[str]]:
        """Rows of strings: a header, then one row per metric, one column per weight table."""

        def fmt(v: float, digits: int = 3) -> str:
            return "-" if math.isnan(v) else f"{v:.{digits}f}"

        header = ["metric", *(t.weights for t in self.tables)]
        rows = [header]
        for name in sorted({n for t in self.tables for n in t.mae}):
            unit = PHENOTYPES[name].unit or ""
            n = max(t.n_mae.get(name, 0) for t in self.tables)
            rows.append([f"{name} MAE ({unit}, n={n})", *(fmt(t.mae.get(name, float("nan")), 2) for t in self.tables)])
        for key in sorted({k for t in self.tables for k in t.aurocs}):
            pos, neg = self.tables[0].support.get(key, (0, 0))
            rows.append(
                [
                    f"AUROC {key} ({pos}+/{neg}-)",
                    *(_with_interval(t.aurocs.get(key, float("nan")), t.intervals.get(key)) for t in self.tables),
                ]
            )
        rows.append(["mean AUROC >=1", *(fmt(t.mean_auroc(1)) for t in self.tables)])
        rows.append(["mean AUROC >=2", *(fmt(t.mean_auroc(2)) for t in self.tables)])
        return rows

    def text(self) -> str:
        """The table as aligned text, with the split and the baseline."""
        rows = self.table()
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [
            f"test studies {self.n_test}, validation {self.n_val}, training {self.n_train} (split by patient, "
            f"seed {self.seed}); k={self.k} neighbours per section from the training and validation studies, "
            + ("similarity-weighted votes" if self.temperature is None else f"softmax votes (T={self.temperature:g})"),
            f"baseline LVEF MAE (training mean): {self.baseline_lvef_mae:.2f} %",
        ]
        lines += self.notes
        for r in rows:
            lines.append("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_test": self.n_test,
            "n_val": self.n_val,
            "n_train": self.n_train,
            "k": self.k,
            "seed": self.seed,
            "baseline_lvef_mae": self.baseline_lvef_mae,
            "temperature": self.temperature,
            "tables": [
                {
                    "weights": t.weights,
                    "fingerprint": t.fingerprint,
                    "mae": t.mae,
                    "n_mae": t.n_mae,
                    "aurocs": t.aurocs,
                    "auroc_intervals": {k: list(v) for k, v in t.intervals.items()},
                    "support": {k: list(v) for k, v in t.support.items()},
                }
                for t in self.tables
            ],
            "fit": self.fit.summary() if self.fit is not None else None,
            "notes": self.notes,
        }


def _with_interval(value: float, interval: tuple[float, float] | None) -> str:
    if math.isnan(value):
        return "-"
    if interval is None or math.isnan(interval[0]):
        return f"{value:.3f}"
    return f"{value:.3f} [{interval[0]:.2f}, {interval[1]:.2f}]"


def score_table(
    retriever: CaseRetriever,
    test: Iterable[int],
    truth: Mapping[int, Mapping[str, str]],
    *,
    k: int,
    temperature: float | None = None,
) -> TableScore:
    """Predict every test study with the retriever's weight table and score against ``truth``."""
    voter = NeighbourVoter(retriever, k=k, temperature=temperature)
    names = [n for n in PHENOTYPES if n in TRUTH_VALUES or n in TRUTH_GRADES]
    errors: dict[str, list[float]] = {n: [] for n in names if n in TRUTH_VALUES}
    pairs: dict[str, list[tuple[float, float]]] = {n: [] for n in errors}
    scores: dict[str, list[float]] = {}
    labels: dict[str, list[int]] = {}
    patients: dict[str, list[int]] = {}
    for study_id in test:
        row = truth[study_id]
        patient = retriever.catalog.study(study_id).patient_id
        predictions = voter.predict(study_id, names=names).predictions
        for name, pred in predictions.items():
            if name in TRUTH_VALUES:
                if pred.value is not None:
                    true_value = TRUTH_VALUES[name](row)
                    errors[name].append(abs(pred.value - true_value))
                    pairs[name].append((float(pred.value), float(true_value)))
                continue
            if pred.grade_probabilities is None:
                continue
            grade = TRUTH_GRADES[name](row)
            for level in (1, 2):
                key = f"{name}>={level}"
                scores.setdefault(key, []).append(float(sum(pred.grade_probabilities[level:])))
                labels.setdefault(key, []).append(int(grade >= level))
                patients.setdefault(key, []).append(patient)
    aurocs = {key: auroc(scores[key], labels[key]) for key in scores}
    intervals = {key: auroc_interval(scores[key], labels[key], groups=patients[key]) for key in scores}
    support = {key: (int(sum(labels[key])), len(labels[key]) - int(sum(labels[key]))) for key in labels}
    return TableScore(
        weights=retriever.weights.name,
        fingerprint=retriever.weights.fingerprint,
        mae={n: float(np.mean(e)) if e else float("nan") for n, e in errors.items()},
        n_mae={n: len(e) for n, e in errors.items()},
        aurocs=aurocs,
        support=support,
        intervals=intervals,
        outcomes={key: (scores[key], labels[key]) for key in scores},
        pairs=pairs,
    )


def evaluate_archive(
    retriever: CaseRetriever,
    archive: Path,
    *,
    pseudonym_key: bytes,
    learned: ViewWeights | None = None,
    test_fraction: float = 0.3,
    val_fraction: float = 0.2,
    seed: int = 0,
    k: int = 50,
    temperature: float | None = None,
    fit_options: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
    test_patients: Iterable[str] | None = None,
) -> EvaluationReport:
    """Score uniform, default and learned weights on held-out patients of a simulated archive.

    Args:
        retriever: over the archive's store and embeddings (its own table is not used).
        archive: the simulated archive's folder (with ``truth/studies.csv``).
        pseudonym_key: the key the archive was ingested with.
        learned: a learned table to score; default: fit one on the training patients now.
        test_fraction / val_fraction: shares of patients held out for testing and validation.
        k: neighbours per section.
        temperature: vote weighting (see :class:`NeighbourVoter`); None = similarity weights.
        fit_options: extra arguments of :func:`fit_view_weights` (steps, temperature, ...).
        progress: called with a line per stage.
        test_patients: patient pseudonyms to test on (e.g. those an encoder's training held out, whose
            reports it never saw); the other patients are split into validation and training by
            ``val_fraction``. Default: a ``test_fraction`` of all patients.
    """
    truth = truth_by_study(retriever, archive, pseudonym_key)
    catalog = retriever.catalog
    usable = {s: catalog.studies[s].patient_id for s in truth if s in retriever.studies}
    if len(set(usable.values())) < 3:
        raise RetrievalError("evaluation needs at least 3 patients with embedded clips and truth")
    if test_patients is None:
        test, val, train = split_patients(usable, (test_fraction, val_fraction), seed=seed)
    else:
        held = set(test_patients)
        test = sorted(s for s in usable if catalog.studies[s].patient_pseudonym in held)
        rest = {s: p for s, p in usable.items() if s not in set(test)}
        val, train = split_patients(rest, (val_fraction,), seed=seed) if rest else ([], [])
    if not test or not train:
        raise RetrievalError(f"the split left {len(test)} test and {len(train)} training studies; add patients")
    database = [*train, *val]
    notes: list[str] = []
    fit: FitResult | None = None
    if learned is None:
        fit = fit_view_weights(
            retriever.with_weights(ViewWeights.default()).restricted(database),
            train_studies=train,
            val_studies=val,
            **dict(fit_options or {}),
        )
        learned = fit.weights
        notes += [f"learned table: {line}" for line in fit.lines()]
        if progress is not None:
            progress("fitted the learned table")
    tables = [ViewWeights.uniform(), ViewWeights.default(), learned.with_name("learned")]
    scored = []
    for table in tables:
        searcher = retriever.with_weights(table).restricted(database)
        scored.append(score_table(searcher, test, truth, k=k, temperature=temperature))
        if progress is not None:
            progress(f"scored the {table.name} table")
    train_lvef = [catalog.measurements.get(s, {}).get("lvef") for s in train]
    known = [v for v in train_lvef if v is not None]
    mean = float(np.mean(known)) if known else float("nan")
    baseline = float(np.mean([abs(mean - TRUTH_VALUES["lvef"](truth[s])) for s in test])) if known else float("nan")
    return EvaluationReport(
        tables=scored,
        n_test=len(test),
        n_val=len(val),
        n_train=len(train),
        k=k,
        seed=seed,
        baseline_lvef_mae=baseline,
        fit=fit,
        notes=notes,
        temperature=temperature,
        test_studies=list(test),
        reference_studies=database,
        validation_studies=list(val),
        learned=learned,
    )
