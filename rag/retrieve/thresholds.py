"""Decision thresholds of the finding votes: fitted on validation patients (Youden, F1 or accuracy), saved
beside the weight table; one for "abnormal at all" and one for "moderate or worse"."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rag.core.errors import RetrievalError
from rag.vocab.findings import PHENOTYPES

__all__ = ["CRITERIA", "Thresholds", "best_threshold", "thresholds_path"]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# Thresholds
# --------------------------------------------------------------------------------------------------


def thresholds_path(weights_path: Path | str) -> Path:
    """Where the thresholds of a weight file live: ``<name>.thresholds.json`` beside it."""
    path = Path(weights_path)
    return path.with_name(f"{path.stem}.thresholds.json")


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds of the findings' vote probabilities, fitted on a validation split.

    Attributes:
        values: phenotype -> threshold (positive when probability >= threshold).
        criterion: ``youden`` (TPR - FPR), ``f1`` or ``accuracy``.
        moderate: phenotype -> threshold on the probability of grade >= 2 (the weighted fraction of
            neighbours graded moderate or worse): at or above it the finding is called moderate or
            worse, whatever ``values`` says. Empty when not fitted.
        moderate_criterion: how ``moderate`` was chosen (one of :data:`CRITERIA`).
        scores: phenotype -> the criterion's value at the threshold on the validation studies.
        support: phenotype -> (positives, negatives) among the validation studies.
        k: the number of neighbours the votes used.
        weights: the weight table's name and fingerprint the votes used.
        skipped: phenotype -> why no threshold was fitted.
    """

    values: dict[str, float]
    criterion: str
    moderate: dict[str, float] = field(default_factory=dict)
    moderate_criterion: str = ""
    scores: dict[str, float] = field(default_factory=dict)
    support: dict[str, tuple[int, int]] = field(default_factory=dict)
    k: int = 50
    weights: str = ""
    skipped: dict[str, str] = field(default_factory=dict)

    def save(self, path: Path | str) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"format": "rag.vote-thresholds/1", **asdict(self)}
        data["support"] = {k: list(v) for k, v in self.support.items()}
        path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path | str) -> Thresholds:
        """Read a thresholds file written by :meth:`save`.

        Raises:
            RetrievalError: the file is missing or is not a thresholds file.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RetrievalError(f"no thresholds file at {path}; fit one with `rag retrieve fit-thresholds`") from None
        except (OSError, json.JSONDecodeError) as e:
            raise RetrievalError(f"cannot read the thresholds file {path}: {e}") from e
        if not isinstance(data, dict) or data.get("format") != "rag.vote-thresholds/1":
            raise RetrievalError(f"{path} is not a vote-thresholds file (format rag.vote-thresholds/1)")
        unknown = sorted((set(data.get("values", {})) | set(data.get("moderate", {}))) - set(PHENOTYPES))
        if unknown:
            raise RetrievalError(f"{path}: unknown phenotype(s) {unknown}; known: {sorted(PHENOTYPES)}")
        return cls(
            values={str(k): float(v) for k, v in data["values"].items()},
            criterion=str(data["criterion"]),
            moderate={str(k): float(v) for k, v in data.get("moderate", {}).items()},
            moderate_criterion=str(data.get("moderate_criterion", "")),
            scores={str(k): float(v) for k, v in data.get("scores", {}).items()},
            support={str(k): (int(v[0]), int(v[1])) for k, v in data.get("support", {}).items()},
            k=int(data.get("k", 50)),
            weights=str(data.get("weights", "")),
            skipped={str(k): str(v) for k, v in data.get("skipped", {}).items()},
        )


CRITERIA = ("youden", "f1", "accuracy")
"""How a finding's vote threshold is chosen on validation studies (see :func:`best_threshold`)."""


def best_threshold(scores: np.ndarray, labels: np.ndarray, criterion: str = "youden") -> tuple[float, float]:
    """The threshold on ``scores`` that best separates ``labels`` (positive when score >= threshold).

    Candidate cut points lie midway between consecutive distinct scores. ``youden`` maximises
    TPR - FPR, ``f1`` the F1 score of the positive class, ``accuracy`` the share of studies called
    right (a finding that the votes do not separate is then never called, as an all-normal reader
    would not); ties go to the higher threshold.

    Returns: (threshold, criterion value).

    Raises:
        RetrievalError: an unknown criterion, or labels of one class only.
    """
    if criterion not in CRITERIA:
        raise RetrievalError(f"unknown threshold criterion {criterion!r}; use one of {', '.join(CRITERIA)}")
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        raise RetrievalError(f"cannot fit a threshold with {pos} positive and {neg} negative studies")
    distinct = np.unique(s)[::-1]  # descending
    cuts = np.append((distinct[:-1] + distinct[1:]) / 2.0, distinct[-1] - 1e-9)
    cuts = np.concatenate([[distinct[0] + 1e-9], cuts])
    best_t, best_v = float(cuts[0]), -math.inf
    for t in cuts:
        pred = s >= t
        tp = int((pred & y).sum())
        fp = int((pred & ~y).sum())
        if criterion == "youden":
            value = tp / pos - fp / neg
        elif criterion == "f1":
            value = 2 * tp / (tp + fp + pos)
        else:
            value = (tp + neg - fp) / (pos + neg)
        if value > best_v + 1e-12:
            best_t, best_v = float(t), float(value)
    return best_t, best_v
