"""Fit the section x view weights and the vote thresholds on the patients a model may see.

One recipe for the command line (`rag retrieve fit-view-weights`) and the demo: studies of excluded
patients (the encoder's held-out patients, to be drafted or evaluated later) are neither searched
nor fitted on; the remaining patients are split into a training part (the weights) and a
validation part (the weights' check and the vote thresholds).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rag.core.errors import RetrievalError

if TYPE_CHECKING:
    from rag.retrieve.fit import FitResult
    from rag.retrieve.retriever import CaseRetriever
    from rag.retrieve.thresholds import Thresholds

__all__ = ["Calibration", "calibrate"]


@dataclass
class Calibration:
    """What :func:`calibrate` fitted, and on which studies."""

    fit: FitResult
    thresholds: Thresholds | None
    train_studies: list[int]
    val_studies: list[int]
    excluded_studies: int


def calibrate(
    retriever: CaseRetriever,
    *,
    exclude_patients: Iterable[str] = (),
    val_fraction: float = 0.25,
    seed: int = 0,
    k: int = 50,
    thresholds: bool = True,
    progress: Callable[[str], None] | None = None,
    **fit_options: Any,
) -> Calibration:
    """Fit the weight table (and, with ``thresholds``, the vote thresholds) on patients not excluded.

    Args:
        retriever: searches the stored embeddings; its weights are the starting table.
        exclude_patients: patient pseudonyms left out of everything (search and fitting).
        val_fraction: share of the remaining patients for the validation part.
        fit_options: passed to :func:`rag.retrieve.fit.fit_view_weights` (steps, temperature, hard).

    Raises:
        RetrievalError: no study is left once the excluded patients are removed.
    """
    from rag.retrieve.fit import fit_view_weights, split_patients
    from rag.retrieve.voting import NeighbourVoter, fit_thresholds

    excluded = set(exclude_patients)
    catalog = retriever.catalog
    usable = {
        s: info.patient_id
        for s, info in catalog.studies.items()
        if s in retriever.studies and info.patient_pseudonym not in excluded
    }
    if not usable:
        raise RetrievalError(
            f"no study is left to fit on: all {len(catalog.studies)} stored studies belong to excluded patients"
        )
    n_excluded = sum(1 for s in catalog.studies if s in retriever.studies) - len(usable)
    searcher = retriever.restricted(usable) if n_excluded else retriever
    val, train = split_patients(usable, (val_fraction,), seed=seed)
    result = fit_view_weights(searcher, train_studies=train, val_studies=val, progress=progress, **fit_options)
    fitted = None
    if thresholds and val:
        hard = bool(fit_options.get("hard", False))
        voter = NeighbourVoter(searcher.with_weights(result.weights, hard_views=hard), k=k)
        fitted = fit_thresholds(voter, val)
    return Calibration(result, fitted, list(train), list(val), n_excluded)
