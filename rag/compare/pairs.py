"""Change pairs: every other patient's consecutive studies, as the change of each section embedding.

A pair's change in section ``s`` is ``e_current(s) - e_prior(s)`` (both view-informed, L2-normalised
section embeddings, :mod:`rag.retrieve.study`): what stays the same in one patient's heart (anatomy,
machine, habitus) cancels, what changed remains. Searching these vectors finds other patients whose
change resembles this one; their reports' own grades say what changed (the change vote), and their
comparison lines are the evidence a reader sees.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from rag.vocab.sections import ECHO_SECTIONS

__all__ = ["ChangePairIndex", "PairHit", "consecutive_pairs"]


@dataclass(frozen=True)
class PairHit:
    """One retrieved change pair."""

    row: int
    prior_study_id: int
    current_study_id: int
    similarity: float


def consecutive_pairs(
    studies: Iterable[tuple[int, int, dt.date | None]],
) -> list[tuple[int, int]]:
    """(prior, current) study IDs of each patient's consecutive dated studies; ``studies`` holds
    (study ID, patient ID, date)."""
    by_patient: dict[int, list[tuple[dt.date, int]]] = {}
    for study, patient, date in studies:
        if date is not None:
            by_patient.setdefault(int(patient), []).append((date, int(study)))
    out = []
    for rows in by_patient.values():
        rows.sort()
        out += [(a, b) for (_, a), (_, b) in itertools.pairwise(rows)]
    return sorted(out)


class ChangePairIndex:
    """Section-change vectors of study pairs, their patients and their labelled changes.

    Args:
        pairs: (prior, current) study IDs.
        embeddings: study ID -> (15, D) section embeddings and (15,) evidence weights.
        patients: study ID -> patient ID (a query never retrieves its own patient's pairs).
        labels: (prior labels, current labels) of each pair: phenotype -> grade or value, as the two
            studies' own reports say (:meth:`rag.retrieve.NeighbourVoter.report_labels`).
    """

    def __init__(
        self,
        pairs: list[tuple[int, int]],
        embeddings: Mapping[int, tuple[np.ndarray, np.ndarray]],
        patients: Mapping[int, int],
        labels: list[tuple[Mapping[str, float], Mapping[str, float]]],
    ) -> None:
        if len(labels) != len(pairs):
            raise ValueError(f"{len(pairs)} pairs but {len(labels)} label rows")
        self.pairs = list(pairs)
        self.patients = np.array([patients[a] for a, _ in pairs], dtype=np.int64)
        self.labels = labels
        n = len(pairs)
        dim = next(iter(embeddings.values()))[0].shape[1] if embeddings else 0
        self.deltas = np.zeros((n, len(ECHO_SECTIONS), dim), np.float32)
        self.valid = np.zeros((n, len(ECHO_SECTIONS)), bool)
        for row, (a, b) in enumerate(pairs):
            (va, ea), (vb, eb) = embeddings[a], embeddings[b]
            self.deltas[row] = vb - va
            self.valid[row] = (ea > 0) & (eb > 0)
        norms = np.linalg.norm(self.deltas, axis=2, keepdims=True)
        self._unit = self.deltas / np.maximum(norms, 1e-12)

    def __len__(self) -> int:
        return len(self.pairs)

    def search(self, section: str, delta: np.ndarray, k: int, *, exclude_patient: int | None) -> list[PairHit]:
        """The ``k`` pairs whose change in ``section`` points most like ``delta`` (cosine)."""
        s = ECHO_SECTIONS.index(section)
        norm = float(np.linalg.norm(delta))
        if norm < 1e-12 or not len(self.pairs):
            return []
        sims = self._unit[:, s, :] @ (np.asarray(delta, np.float32) / norm)
        ok = self.valid[:, s].copy()
        if exclude_patient is not None:
            ok &= self.patients != int(exclude_patient)
        rows = np.flatnonzero(ok)
        order = rows[np.argsort(-sims[rows], kind="stable")[:k]]
        return [PairHit(int(r), self.pairs[r][0], self.pairs[r][1], float(sims[r])) for r in order]

    def change_vote(self, hits: list[PairHit], name: str, min_change: float = 0.5) -> float:
        """The similarity-weighted share of hits where ``name`` rose by at least ``min_change`` minus the
        share where it fell by as much (-1..1)."""
        if not hits:
            return 0.0
        w = np.clip(np.array([h.similarity for h in hits]), 0.0, None)
        if w.sum() <= 0:
            w = np.ones(len(hits))
        signs = []
        for h in hits:
            before, after = self.labels[h.row]
            a, b = before.get(name), after.get(name)
            moved = 0.0 if a is None or b is None or abs(b - a) < min_change else float(np.sign(b - a))
            signs.append(moved)
        return float(np.dot(w / w.sum(), signs))

    def value_change(self, hits: list[PairHit], name: str) -> float | None:
        """The similarity-weighted mean change of ``name`` (after minus before, as the pairs' reports
        state it) among the hits that have it in both studies; None when none has."""
        changes, weights = [], []
        for h in hits:
            before, after = self.labels[h.row]
            if name in before and name in after:
                changes.append(after[name] - before[name])
                weights.append(max(h.similarity, 0.0))
        if not changes:
            return None
        w = np.asarray(weights) if sum(weights) > 0 else np.ones(len(changes))
        return float(np.dot(w / w.sum(), changes))
