"""The report-section vectors retrieval searches, one index per section name, and the filters of a search."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rag.core.arrays import lookup
from rag.core.errors import RetrievalError
from rag.index.catalog import Catalog
from rag.retrieve.study import IndexFactory, IndexKind
from rag.vocab.sections import ECHO_SECTIONS

if TYPE_CHECKING:
    import datetime as dt

    from rag.index.protocol import VectorIndex

__all__ = ["Candidates", "ReportSectionIndex"]

log = logging.getLogger(__name__)


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
        rows, found = lookup(self.ids, np.asarray(ids, dtype=np.int64))
        if not found.all():
            raise RetrievalError("some report section IDs are not in the index")
        return rows

    def study_of(self, section_id: int) -> int:
        return int(self.study_ids[self.rows(np.array([section_id]))[0]])
