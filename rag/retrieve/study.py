"""View-informed study embeddings, one per anatomical section, and the index of report-section vectors.

A study has many clips of several views; a report section (say Aortic Valve) is best informed by
some views (A5C, parasternal Doppler) and not at all by others (A2C). For each section ``s`` the
study's section embedding is the weighted mean of its clip embeddings, each clip weighted by how
much its view informs ``s``, then L2-normalised::

    w_i(s) = view_probs_i · W[s, :]          (soft: the view classifier's probabilities, the default)
    w_i(s) = W[s, argmax view_probs_i]       (hard: the predicted view only)
    e(s)   = normalise( Σ_i w_i(s) x_i / Σ_i w_i(s) )

A section whose clips all weigh 0 (no clip of a view that informs it) gets a zero vector and is
reported as having no evidence; retrieval skips it rather than searching with noise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from rag.core.errors import RetrievalError, UnknownStudyError
from rag.index.catalog import Catalog
from rag.retrieve.weights import ViewWeights
from rag.vocab.sections import ECHO_SECTIONS
from rag.vocab.views import COARSE_VIEWS

if TYPE_CHECKING:
    import datetime as dt

    from rag.index.protocol import VectorIndex

__all__ = [
    "Candidates",
    "IndexFactory",
    "IndexKind",
    "ReportSectionIndex",
    "SectionEmbeddings",
    "StudyIndex",
    "clip_section_weights",
    "study_section_embeddings",
]

log = logging.getLogger(__name__)

IndexKind = Literal["auto", "flat", "hnsw", "ivf_flat", "ivf_pq"]
"""Vector index kinds of ``rag.index.faiss_index.build_index``."""

IndexFactory = Callable[[np.ndarray, np.ndarray], "VectorIndex"]
"""Builds a vector index from ``(vectors (n, d) float32, ids (n,) int64)``."""

_EPS = 1e-12


@dataclass(frozen=True)
class SectionEmbeddings:
    """The section embeddings of one study.

    Attributes:
        vectors: (15, D) float32; rows L2-normalised, or all zero where the section has no evidence.
        evidence: (15,) float64, the total clip weight behind each row (0 = no evidence).
        sections: the row names, ``ECHO_SECTIONS``.
    """

    vectors: np.ndarray
    evidence: np.ndarray
    sections: tuple[str, ...] = ECHO_SECTIONS

    @property
    def has_evidence(self) -> np.ndarray:
        """(15,) bool: rows backed by at least one clip of an informing view."""
        return np.asarray(self.evidence > 0)

    @property
    def no_evidence(self) -> list[str]:
        """The sections with no evidence, in report order."""
        return [s for s, ok in zip(self.sections, self.has_evidence, strict=True) if not ok]

    def vector(self, section: str) -> np.ndarray:
        """One section's row. Returns: (D,) float32, L2-normalised or zero."""
        return np.asarray(self.vectors[self.sections.index(section)])


def clip_section_weights(
    view_probs: np.ndarray, weights: ViewWeights, *, views: Sequence[str] = COARSE_VIEWS, hard: bool = False
) -> np.ndarray:
    """Each clip's weight for each section.

    Args:
        view_probs: (n, V) view probabilities of n clips, columns named by ``views``.
        weights: the section x view table.
        views: the view class of each column of ``view_probs`` (a model's ``view_classes``).
        hard: use only each clip's most probable view (ties: the first) instead of the probabilities.

    Returns: (n, 15) float64, >= 0.
    """
    probs = np.asarray(view_probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != len(views):
        raise RetrievalError(f"view_probs must have shape (n, {len(views)}), got {probs.shape}")
    table = weights.columns_for(views)  # (15, V)
    if hard and len(probs):
        onehot = np.zeros_like(probs)
        onehot[np.arange(len(probs)), probs.argmax(axis=1)] = 1.0
        probs = onehot
    return np.asarray(probs @ table.T)


def _combine(vectors: np.ndarray, clip_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, D) clips and (n, S) weights -> ((S, D) normalised rows or zeros, (S,) total weight)."""
    total = clip_weights.sum(axis=0)
    summed = clip_weights.T @ vectors.astype(np.float64)
    mean = summed / np.where(total > 0, total, 1.0)[:, None]
    norms = np.linalg.norm(mean, axis=1)
    ok = (total > 0) & (norms > _EPS)
    out = np.zeros_like(mean)
    out[ok] = mean[ok] / norms[ok, None]
    return out.astype(np.float32), np.where(ok, total, 0.0)


def study_section_embeddings(
    clip_vectors: np.ndarray,
    view_probs: np.ndarray,
    weights: ViewWeights,
    *,
    views: Sequence[str] = COARSE_VIEWS,
    hard: bool = False,
) -> SectionEmbeddings:
    """One study's 15 section embeddings from its clips (see the module docstring).

    Args:
        clip_vectors: (n, D) float32, L2-normalised clip embeddings of the study.
        view_probs: (n, V) view probabilities of the same clips, columns named by ``views``.
        weights: the section x view table.
        hard: weight each clip by its most probable view only, as EchoPrime does.

    Returns: rows (15, D) float32 L2-normalised, zero rows for sections without evidence.
    """
    x = np.asarray(clip_vectors)
    if x.ndim != 2 or len(x) != len(view_probs):
        raise RetrievalError(
            f"clip_vectors must be (n, D) with one row per view_probs row; got {x.shape} and {np.shape(view_probs)}"
        )
    vectors, evidence = _combine(x, clip_section_weights(view_probs, weights, views=views, hard=hard))
    return SectionEmbeddings(vectors, evidence)


class StudyIndex:
    """Section embeddings of every stored study that has embedded clips, computed from its clips on demand.

    Clip vectors are kept grouped by study; a study's 15 section embeddings are computed when asked
    for (:meth:`get`), and all studies' embeddings of one section at once by :meth:`section_matrix`,
    so the memory cost is that of the clip vectors, whatever the number of sections.
    """

    def __init__(
        self,
        clip_ids: np.ndarray,
        clip_vectors: np.ndarray,
        view_probs: np.ndarray,
        clip_study: np.ndarray,
        weights: ViewWeights,
        *,
        views: Sequence[str] = COARSE_VIEWS,
        hard: bool = False,
    ) -> None:
        """
        Args:
            clip_ids: (n,) int64 clip row IDs.
            clip_vectors: (n, D) float32, L2-normalised.
            view_probs: (n, V) float, columns named by ``views``.
            clip_study: (n,) int64 study ID of each clip.
            weights: the section x view table.
            hard: weight clips by their most probable view only.
        """
        if not (len(clip_ids) == len(clip_vectors) == len(view_probs) == len(clip_study)):
            raise RetrievalError(
                "clip_ids, clip_vectors, view_probs and clip_study must have one row per clip; got lengths "
                f"{len(clip_ids)}, {len(clip_vectors)}, {len(view_probs)}, {len(clip_study)}"
            )
        study = np.asarray(clip_study, dtype=np.int64)
        if len(study) and not bool(np.all(study[1:] >= study[:-1])):
            order = np.argsort(study, kind="stable")
            clip_ids, clip_vectors, view_probs, study = (
                np.asarray(clip_ids)[order],
                np.asarray(clip_vectors)[order],
                np.asarray(view_probs)[order],
                study[order],
            )
        # already grouped by study (a case library's memory-mapped table): kept as they are, not copied
        self.clip_ids = np.asarray(clip_ids, dtype=np.int64)
        self.clip_vectors = np.asarray(clip_vectors, dtype=np.float32)
        self.view_probs = np.asarray(view_probs)
        self.clip_study = study
        self.study_ids, self._starts = np.unique(self.clip_study, return_index=True)
        self._ends = np.append(self._starts[1:], len(self.clip_study)).astype(np.int64)
        self.views = tuple(views)
        self.hard = hard
        self.weights = weights
        self._all_weights: np.ndarray | None = None

    @property
    def _clip_weights(self) -> np.ndarray:
        """(n, 15) every clip's section weights (computed on first use: only whole-archive work needs them)."""
        if self._all_weights is None:
            self._all_weights = clip_section_weights(self.view_probs, self.weights, views=self.views, hard=self.hard)
        return self._all_weights

    def _row_of(self, study_id: int) -> int | None:
        row = int(np.searchsorted(self.study_ids, int(study_id)))
        return row if row < len(self.study_ids) and int(self.study_ids[row]) == int(study_id) else None

    @property
    def dim(self) -> int:
        return int(self.clip_vectors.shape[1]) if self.clip_vectors.ndim == 2 else 0

    def __len__(self) -> int:
        return len(self.study_ids)

    def __contains__(self, study_id: object) -> bool:
        return isinstance(study_id, int | np.integer) and self._row_of(int(study_id)) is not None

    def with_weights(self, weights: ViewWeights, *, hard: bool | None = None) -> StudyIndex:
        """The same clips under another weight table."""
        return StudyIndex(
            self.clip_ids,
            self.clip_vectors,
            self.view_probs,
            self.clip_study,
            weights,
            views=self.views,
            hard=self.hard if hard is None else hard,
        )

    def clips_of(self, study_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(clip IDs (n,), vectors (n, D), view probabilities (n, V)) of one study."""
        row = self._row_of(study_id)
        if row is None:
            raise UnknownStudyError(f"study {study_id} has no embedded clips; run `rag embed` after ingesting it")
        a, b = self._starts[row], self._ends[row]
        return self.clip_ids[a:b], self.clip_vectors[a:b], np.asarray(self.view_probs[a:b], dtype=np.float64)

    def get(self, study_id: int) -> SectionEmbeddings:
        """The study's 15 section embeddings.

        Raises:
            UnknownStudyError: the study has no embedded clips.
        """
        _, x, probs = self.clips_of(study_id)
        weights = clip_section_weights(probs, self.weights, views=self.views, hard=self.hard)
        vectors, evidence = _combine(x, weights)
        return SectionEmbeddings(vectors, evidence)

    def section_matrix(self, section: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every study's embedding of one section.

        Returns: (study IDs (m,) int64, vectors (m, D) float32 L2-normalised or zero, evidence (m,) float64).
        """
        col = ECHO_SECTIONS.index(section)
        w = self._clip_weights[:, col]
        m = len(self.study_ids)
        if m == 0:
            return self.study_ids, np.zeros((0, self.dim), np.float32), np.zeros(0)
        total = np.add.reduceat(w, self._starts)
        summed = np.add.reduceat(self.clip_vectors.astype(np.float64) * w[:, None], self._starts, axis=0)
        norms = np.linalg.norm(summed, axis=1)
        ok = (total > 0) & (norms > _EPS)
        vectors = np.zeros_like(summed)
        vectors[ok] = summed[ok] / norms[ok, None]
        return self.study_ids, vectors.astype(np.float32), np.where(ok, total, 0.0)

    def predicted_views(self) -> dict[int, str]:
        """Clip ID -> the most probable view."""
        if not len(self.clip_ids):
            return {}
        best = self.view_probs.argmax(axis=1)
        return {int(c): self.views[int(v)] for c, v in zip(self.clip_ids, best, strict=True)}


@dataclass(frozen=True)
class Candidates:
    """The report sections of one section name a search may return.

    Attributes:
        section: the section name.
        count: how many pass the filters.
        allowed: (count,) int64 ascending IDs when the filters allow few of the section, else None.
        excluded: int64 ascending IDs of the section that the filters leave out (when ``allowed`` is None).
    """

    section: str
    count: int
    allowed: np.ndarray | None
    excluded: np.ndarray


class ReportSectionIndex:
    """The stored report-section text vectors of echo reports, with the metadata retrieval filters on.

    One vector index per section name holds the vectors of every report section of that name (in a
    case library, the memory-mapped indexes it saved; otherwise built on first use from ``vectors``).
    A search passes its filter (other study, other patient, earlier date, some studies) to the
    index, so the index returns the k best among the allowed candidates, never k results of which
    some are then dropped. A filter that allows most of a section is passed as the few excluded IDs.
    """

    def __init__(
        self,
        ids: np.ndarray,
        vectors: np.ndarray | None,
        section_codes: np.ndarray,
        study_ids: np.ndarray,
        catalog: Catalog,
        *,
        index_kind: IndexKind = "auto",
        index_factory: IndexFactory | None = None,
        section_index: Callable[[str], VectorIndex] | None = None,
    ) -> None:
        """
        Args:
            ids: (n,) int64 report section IDs, ascending.
            vectors: (n, D) float32, L2-normalised text embeddings; None when ``section_index`` gives the
                saved indexes (the vectors are then read back from them when asked for).
            section_codes: (n,) index into ``ECHO_SECTIONS`` of each section's name.
            study_ids: (n,) int64 study of each section.
            catalog: store metadata (patients, dates).
            index_kind: the kind passed to ``rag.index.faiss_index.build_index`` when no factory is given.
            index_factory: builds a section's vector index from (vectors, ids); default ``build_index``.
            section_index: section name -> its saved vector index (a case library's).
        """
        if not (len(ids) == len(section_codes) == len(study_ids)) or (vectors is not None and len(vectors) != len(ids)):
            raise RetrievalError("ids, vectors, section_codes and study_ids must have one row per report section")
        ids = np.asarray(ids, dtype=np.int64)
        order = None if bool(np.all(ids[1:] > ids[:-1])) else np.argsort(ids, kind="stable")
        pick = (lambda a: a) if order is None else (lambda a: np.asarray(a)[order])
        self.ids = pick(ids)
        self._vectors = None if vectors is None else np.ascontiguousarray(pick(vectors), dtype=np.float32)
        self.section_codes = np.asarray(pick(section_codes), dtype=np.int16)
        self.study_ids = np.asarray(pick(study_ids), dtype=np.int64)
        self.catalog = catalog
        self._patients: np.ndarray | None = None
        self._dates: np.ndarray | None = None
        self._by_study: tuple[np.ndarray, np.ndarray] | None = None
        self._excluded: dict[tuple[int | None, int | None], np.ndarray] = {}
        self.index_kind = index_kind
        self._factory = index_factory
        self._saved = section_index
        self._indexes: dict[int, VectorIndex] = {}
        self._rows: dict[int, np.ndarray] = {}
        self._dim = int(vectors.shape[1]) if vectors is not None and np.ndim(vectors) == 2 else 0

    @classmethod
    def from_embeddings(
        cls,
        ids: np.ndarray,
        vectors: np.ndarray,
        catalog: Catalog,
        *,
        index_kind: IndexKind = "auto",
        index_factory: IndexFactory | None = None,
    ) -> ReportSectionIndex:
        """Keep the stored vectors (kind ``sections``) that are sections of echo reports in the catalog."""
        ids = np.asarray(ids, dtype=np.int64)
        keep = np.isin(ids, catalog.section_ids)
        dropped = int((~keep).sum())
        if dropped:
            log.debug("%d stored section vectors are not anatomical sections of echo reports; left out", dropped)
        missing = len(catalog.section_ids) - int(keep.sum())
        if missing:
            log.warning("%d report sections of the store have no vector; run `rag embed` to add them", missing)
        dim = vectors.shape[1] if np.ndim(vectors) == 2 else 0
        kept = ids[keep]
        rows = np.searchsorted(catalog.section_ids, kept)
        return cls(
            kept,
            np.asarray(vectors, dtype=np.float32)[keep] if len(kept) else np.zeros((0, dim), np.float32),
            catalog.section_codes[rows],
            catalog.section_study[rows],
            catalog,
            index_kind=index_kind,
            index_factory=index_factory,
        )

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        if not self._dim and self._saved is not None:
            self._dim = int(self._saved(ECHO_SECTIONS[0]).dim)
        return self._dim

    @property
    def vectors(self) -> np.ndarray:
        """(n, D) float32 vectors of every report section (read back from the saved indexes when needed)."""
        if self._vectors is None:
            out = np.zeros((len(self.ids), self.dim), np.float32)
            for code, section in enumerate(ECHO_SECTIONS):
                rows = self.section_rows(code)
                if len(rows):
                    out[rows] = self._get_vectors(section, self.ids[rows])
            self._vectors = out
        return self._vectors

    def section_rows(self, code: int) -> np.ndarray:
        """Row positions of the report sections named ``ECHO_SECTIONS[code]``, ascending (cached)."""
        rows = self._rows.get(code)
        if rows is None:
            rows = np.flatnonzero(self.section_codes == code)
            self._rows[code] = rows
        return rows

    def index_of(self, section: str) -> VectorIndex:
        """The vector index of one section's report sections (opened or built on first use)."""
        code = ECHO_SECTIONS.index(section)
        found = self._indexes.get(code)
        if found is None:
            if self._saved is not None:
                found = self._saved(section)
            else:
                factory = self._factory
                if factory is None:
                    from rag.index.faiss_index import build_index

                    kind = self.index_kind

                    def factory(vectors: np.ndarray, ids: np.ndarray) -> VectorIndex:
                        return build_index(vectors, ids, kind=kind)

                rows = self.section_rows(code)
                found = factory(self.vectors[rows], self.ids[rows])
                log.debug("report-section index of %s built: %d vectors", section, len(rows))
            self._indexes[code] = found
        return found

    def warm_up(self) -> None:
        """Open or build every section's vector index now rather than on the first search."""
        for section in ECHO_SECTIONS:
            self.index_of(section)

    def allowed_ids(
        self,
        section: str,
        *,
        exclude_study: int | None = None,
        exclude_patient: int | None = None,
        before_date: dt.date | None = None,
        studies: np.ndarray | None = None,
    ) -> np.ndarray:
        """The IDs of the candidates a search may return.

        Args:
            section: the candidates' section name.
            exclude_study: leave out this study's own report sections.
            exclude_patient: leave out every study of this patient.
            before_date: keep only studies dated strictly before this date (undated studies are left out).
            studies: keep only these study IDs.

        Returns: (m,) int64, ascending.
        """
        if section not in ECHO_SECTIONS:
            raise RetrievalError(f"unknown section '{section}'; allowed sections: {list(ECHO_SECTIONS)}")
        rows = self.section_rows(ECHO_SECTIONS.index(section))
        mask = np.ones(len(rows), dtype=bool)
        if exclude_study is not None:
            mask &= self.study_ids[rows] != int(exclude_study)
        if exclude_patient is not None:
            mask &= self.patient_ids[rows] != int(exclude_patient)
        if before_date is not None:
            dates = self.date_ordinals[rows]
            mask &= self.catalog.has_date(dates) & (dates < before_date.toordinal())
        if studies is not None:
            mask &= np.isin(self.study_ids[rows], np.asarray(studies, dtype=np.int64))
        return np.asarray(self.ids[rows[mask]], dtype=np.int64)

    @property
    def patient_ids(self) -> np.ndarray:
        """(n,) int64 patient of each report section (looked up on first use)."""
        if self._patients is None:
            self._patients = self.catalog.patients_of(self.study_ids)
        return self._patients

    @property
    def date_ordinals(self) -> np.ndarray:
        """(n,) int64 date ordinal of each report section's study (looked up on first use)."""
        if self._dates is None:
            self._dates = self.catalog.date_ordinal(self.study_ids)
        return self._dates

    def _rows_of(self, exclude_study: int | None, exclude_patient: int | None) -> np.ndarray:
        """Rows of every report section of one study and of every study of one patient (cached for a few)."""
        key = (exclude_study, exclude_patient)
        rows = self._excluded.get(key)
        if rows is None:
            if self._by_study is None:
                ids = self.study_ids
                if len(ids) < 2 or bool(np.all(ids[1:] >= ids[:-1])):  # reports stored in study order
                    self._by_study = (ids, np.arange(0))
                else:
                    order = np.argsort(ids, kind="stable")
                    self._by_study = (ids[order], order)
            keys, order = self._by_study
            studies = [] if exclude_study is None else [int(exclude_study)]
            if exclude_patient is not None:
                studies += self.catalog.study_ids[self.catalog.study_patient == int(exclude_patient)].tolist()
            bounds = [np.searchsorted(keys, [s, s + 1]) for s in set(studies)]
            spans = [np.arange(a, b) if not len(order) else order[a:b] for a, b in bounds]
            rows = np.sort(np.concatenate([np.zeros(0, np.int64), *spans]))
            if len(self._excluded) >= 64:
                self._excluded.clear()
            self._excluded[key] = rows
        return rows

    def candidates(
        self,
        section: str,
        *,
        exclude_study: int | None = None,
        exclude_patient: int | None = None,
        before_date: dt.date | None = None,
        studies: np.ndarray | None = None,
    ) -> Candidates:
        """The candidates a search of ``section`` may return (filters as for :meth:`allowed_ids`).

        Leaving out one study or one patient is a lookup of its few report sections, not a pass over
        the whole section; other filters list the allowed IDs.
        """
        if section not in ECHO_SECTIONS:
            raise RetrievalError(f"unknown section '{section}'; allowed sections: {list(ECHO_SECTIONS)}")
        code = ECHO_SECTIONS.index(section)
        total = len(self.section_rows(code))
        if before_date is None and studies is None:
            rows = self._rows_of(exclude_study, exclude_patient)
            excluded = self.ids[rows[self.section_codes[rows] == code]]
            return Candidates(section, total - len(excluded), None, excluded)
        allowed = self.allowed_ids(
            section,
            exclude_study=exclude_study,
            exclude_patient=exclude_patient,
            before_date=before_date,
            studies=studies,
        )
        if 2 * len(allowed) >= total:
            everyone = self.ids[self.section_rows(code)]
            return Candidates(section, len(allowed), None, np.setdiff1d(everyone, allowed, assume_unique=True))
        return Candidates(section, len(allowed), allowed, np.zeros(0, np.int64))

    def search(self, query: np.ndarray, k: int, candidates: Candidates) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` candidates nearest to ``query`` (inner product).

        Args:
            query: (D,) float32, L2-normalised.
            k: how many to return (fewer when fewer are allowed).
            candidates: from :meth:`candidates`.

        Returns: (similarities (k',) float32 descending, IDs (k',) int64), k' = min(k, candidates.count).
        """
        if k < 1 or candidates.count < 1:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        from rag.index.protocol import SearchFilter

        if candidates.allowed is not None:
            search_filter: SearchFilter | None = SearchFilter(allowed_ids=candidates.allowed, excluded_ids=None)
        elif len(candidates.excluded):
            search_filter = SearchFilter(allowed_ids=None, excluded_ids=candidates.excluded)
        else:
            search_filter = None
        scores, ids = self.index_of(candidates.section).search(
            np.asarray(query, dtype=np.float32)[None, :], int(min(k, candidates.count)), filter=search_filter
        )
        keep = ids[0] >= 0
        return np.asarray(scores[0][keep], dtype=np.float32), np.asarray(ids[0][keep], dtype=np.int64)

    def vectors_of(self, section: str, ids: np.ndarray) -> np.ndarray:
        """(n, D) float32 vectors of some report sections of ``section``."""
        if self._vectors is not None:
            return np.asarray(self._vectors[self.rows(ids)], dtype=np.float32)
        return self._get_vectors(section, ids)

    def _get_vectors(self, section: str, ids: np.ndarray) -> np.ndarray:
        index = self.index_of(section)
        get = getattr(index, "get_vectors", None)
        if get is None:
            raise RetrievalError(f"the {type(index).__name__} index of {section} cannot return its vectors")
        return np.asarray(get(np.asarray(ids, dtype=np.int64)), dtype=np.float32)

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Row positions of section IDs in this index. Returns: (n,) int64."""
        ids = np.asarray(ids, dtype=np.int64)
        rows = np.searchsorted(self.ids, ids)
        if len(ids) and (np.any(rows >= len(self.ids)) or np.any(self.ids[np.minimum(rows, len(self.ids) - 1)] != ids)):
            raise RetrievalError("some report section IDs are not in the index")
        return rows.astype(np.int64)

    def study_of(self, section_id: int) -> int:
        return int(self.study_ids[self.rows(np.array([section_id]))[0]])
