"""What a retrieval returns: hits with their provenance, the parameters it was made with, and the MMR re-ordering."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    pass

__all__ = ["RetrievalParams", "SectionHit", "StudyRetrieval", "mmr_order"]


@dataclass(frozen=True)
class SectionHit:
    """One retrieved report section, with where it came from and how similar it is.

    ``similarity`` is the inner product of the query's section embedding and the report section's
    text embedding (both L2-normalised: a cosine). ``rank`` starts at 1. ``text`` is None when the
    search was asked not to read texts.
    """

    section: str
    report_section_id: int
    study_id: int
    patient_pseudonym: str
    similarity: float
    text: str | None
    rank: int
    study_date: dt.date | None = None


@dataclass(frozen=True)
class RetrievalParams:
    """How a retrieval was made (recorded with its result)."""

    k: int
    exclude_same_patient: bool
    before_date: dt.date | None
    views: tuple[str, ...] | None
    mmr_lambda: float | None
    mmr_pool: int | None
    weights: str
    weights_fingerprint: str
    hard_views: bool
    index_kind: str
    embeddings: str
    restricted_to: int | None = None


@dataclass(frozen=True)
class StudyRetrieval:
    """The retrieved report sections of every anatomical section of one study.

    Attributes:
        study_id: the query study.
        patient_pseudonym: the query study's patient.
        sections: section name -> hits, best first (sections without evidence have no entry).
        no_evidence: sections for which the study has no clip of an informing view (not searched).
        candidates: section name -> how many report sections passed the filters.
        params: the parameters of the retrieval.
    """

    study_id: int
    patient_pseudonym: str
    sections: dict[str, list[SectionHit]]
    no_evidence: list[str]
    candidates: dict[str, int]
    params: RetrievalParams

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (dates as ISO strings)."""

        def default(o: object) -> object:
            return o.isoformat() if isinstance(o, dt.date) else str(o)

        data: dict[str, Any] = json.loads(json.dumps(asdict(self), default=default))
        return data


def mmr_order(query_sims: np.ndarray, vectors: np.ndarray, k: int, lam: float) -> np.ndarray:
    """Maximal marginal relevance: pick ``k`` of ``m`` candidates, trading relevance for diversity.

    Each step picks the candidate maximising ``lam * sim(query, c) - (1 - lam) * max_{s picked} sim(c, s)``
    (ties go to the earlier candidate). ``lam = 1`` gives the candidates in order of ``query_sims``.

    Args:
        query_sims: (m,) similarities of the candidates to the query.
        vectors: (m, D) candidate vectors, L2-normalised.
        k: how many to pick.
        lam: in [0, 1].

    Returns: (min(k, m),) int64 indices into the candidates, in pick order.
    """
    m = len(query_sims)
    k = min(k, m)
    if k <= 0:
        return np.zeros(0, np.int64)
    sims = np.asarray(query_sims, dtype=np.float64)
    pair = np.asarray(vectors, dtype=np.float64) @ np.asarray(vectors, dtype=np.float64).T
    picked: list[int] = []
    redundancy = np.full(m, -np.inf)
    free = np.ones(m, dtype=bool)
    for _ in range(k):
        penalty = np.where(np.isfinite(redundancy), redundancy, 0.0)
        score = lam * sims - (1.0 - lam) * penalty
        score[~free] = -np.inf
        best = int(np.argmax(score))
        picked.append(best)
        free[best] = False
        redundancy = np.maximum(redundancy, pair[best])
    return np.array(picked, dtype=np.int64)
