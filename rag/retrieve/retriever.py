"""Case retrieval: for each anatomical section of a query study, the nearest report sections of other studies.

The query for section ``s`` is the study's view-informed section embedding (:mod:`rag.retrieve.study`);
the candidates are the stored report sections named ``s``. Every filter — same section name, other
study, other patient, earlier date, candidate study holding a clip of some view — is turned into the
list of allowed IDs and applied inside the vector search, so a search asked for k hits returns k hits
whenever k candidates pass the filters. Optional maximal marginal relevance (MMR) re-orders a pool
of the best allowed candidates towards diversity.

Every hit carries its report section ID, study ID, patient pseudonym and similarity.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.core.arrays import find
from rag.core.errors import RetrievalError
from rag.index.catalog import Catalog
from rag.retrieve.loading import Loaded, from_embeddings, from_library
from rag.retrieve.results import RetrievalParams, SectionHit, StudyRetrieval, mmr_order
from rag.retrieve.sections import Candidates, ReportSectionIndex
from rag.retrieve.study import IndexFactory, IndexKind, SectionEmbeddings, StudyIndex
from rag.retrieve.weights import ViewWeights
from rag.store import Store

if TYPE_CHECKING:
    from rag.index.library import CaseLibrary
from rag.vocab.sections import ECHO_SECTIONS
from rag.vocab.views import COARSE_VIEWS, view_bits, views_of_bits

__all__ = ["CaseRetriever"]

log = logging.getLogger(__name__)

_PREFETCH = 50
"""Hits every plain search fetches (the neighbour vote's k), so that the cases shown reuse them."""
_RECENT = 64
"""Searches kept in a retriever's cache (the sections of a few studies)."""


class CaseRetriever:
    """Retrieves, per anatomical section, the most similar report sections of other studies.

    Heavy state (vectors, catalog, vector indexes) loads on first use or :meth:`warm_up`: from a case
    library (:class:`rag.index.library.CaseLibrary`, what drafting opens: saved indexes and catalog,
    memory-mapped) or, without one, from a ``rag embed`` folder and the store (indexes built in memory).

    Args:
        store: the case store (report texts of the hits are read from it).
        embeddings_folder: a folder written by ``rag embed`` (clips and report sections of one encoder);
            not needed with ``library``.
        library: an opened case library.
        weights: the section x view table; default :meth:`ViewWeights.default`.
        index_kind: the vector index kind (``rag.index.faiss_index.build_index``).
        hard_views: weight each clip by its most probable view only, instead of the view probabilities.
        index_factory: builds the vector index from (vectors, ids) instead of ``build_index``.
        encoder / checkpoint_sha256: when given, the embeddings' manifest must name them.
    """

    def __init__(
        self,
        store: Store,
        embeddings_folder: Path | str | None = None,
        weights: ViewWeights | None = None,
        *,
        library: CaseLibrary | None = None,
        index_kind: IndexKind = "auto",
        hard_views: bool = False,
        index_factory: IndexFactory | None = None,
        encoder: str | None = None,
        checkpoint_sha256: str | None = None,
    ) -> None:
        if embeddings_folder is None and library is None:
            raise RetrievalError("a retriever needs a case library or an embeddings folder written by `rag embed`")
        self.store = store
        self.library = library
        self.embeddings_folder = (
            Path(embeddings_folder) if embeddings_folder is not None else Path(library.folder)  # type: ignore[union-attr]
        )
        self.weights = weights if weights is not None else ViewWeights.default()
        self.index_kind: IndexKind = index_kind
        self.hard_views = hard_views
        self._factory = index_factory
        self._encoder = encoder
        self._sha256 = checkpoint_sha256
        self._loaded: Loaded | None = None
        self._candidates: np.ndarray | None = None
        self._recent: dict[tuple[object, ...], tuple[int, np.ndarray, np.ndarray]] = {}

    # -- loading ----------------------------------------------------------------------------------

    def warm_up(self) -> CaseRetriever:
        """Load vectors and metadata and build the vector index now; returns self."""
        loaded = self._load()
        loaded.sections.warm_up()
        return self

    def _load(self) -> Loaded:
        if self._loaded is None:
            if self.library is not None:
                self._loaded = from_library(self.library, self.weights, hard=self.hard_views)
            else:
                self._loaded = from_embeddings(
                    self.store,
                    self.embeddings_folder,
                    self.weights,
                    hard=self.hard_views,
                    index_kind=self.index_kind,
                    index_factory=self._factory,
                    encoder=self._encoder,
                    checkpoint_sha256=self._sha256,
                )
            log.info(
                "retriever loaded: %d studies with clips, %d report sections, weights %s",
                len(self._loaded.studies),
                len(self._loaded.sections),
                self.weights.name,
            )
        return self._loaded

    @property
    def catalog(self) -> Catalog:
        return self._load().catalog

    @property
    def studies(self) -> StudyIndex:
        """The view-informed section embeddings of the stored studies."""
        return self._load().studies

    @property
    def report_sections(self) -> ReportSectionIndex:
        """The report-section text vectors and their metadata."""
        return self._load().sections

    def with_weights(self, weights: ViewWeights, *, hard_views: bool | None = None) -> CaseRetriever:
        """A retriever over the same vectors and index with another weight table (nothing is reloaded)."""
        other = CaseRetriever(
            self.store,
            self.embeddings_folder if self.library is None else None,
            weights,
            library=self.library,
            index_kind=self.index_kind,
            hard_views=self.hard_views if hard_views is None else hard_views,
            index_factory=self._factory,
            encoder=self._encoder,
            checkpoint_sha256=self._sha256,
        )
        other._candidates = self._candidates
        if self._loaded is not None:
            loaded = self._loaded
            weights.columns_for(loaded.view_classes)
            other._loaded = Loaded(
                loaded.catalog,
                loaded.studies.with_weights(weights, hard=other.hard_views),
                loaded.sections,
                loaded.view_classes,
                loaded.view_masks,
            )
        return other

    def restricted(self, study_ids: Iterable[int] | None) -> CaseRetriever:
        """A retriever over the same vectors whose candidates come only from these studies.

        Use it to search a fixed reference set (e.g. the training patients of an evaluation, one
        site, one period); ``None`` lifts the restriction. Filters still apply on top.
        """
        other = self.with_weights(self.weights)
        other._candidates = None if study_ids is None else np.unique(np.fromiter(study_ids, dtype=np.int64))
        return other

    @property
    def candidate_studies(self) -> np.ndarray | None:
        """The studies candidates may come from, or None when any stored study may."""
        return self._candidates

    # -- queries ----------------------------------------------------------------------------------

    def study_views(self, study_id: int) -> frozenset[str]:
        """The views a study has clips of (the declared view, else the predicted one)."""
        loaded = self._load()
        row = find(loaded.catalog.study_ids, int(study_id))
        return frozenset() if row is None else views_of_bits(int(loaded.view_masks[row]))

    def section_embeddings(self, study_id: int) -> SectionEmbeddings:
        """The query study's 15 section embeddings (all without evidence when it has no embedded clip)."""
        self.catalog.study(study_id)
        studies = self.studies
        if study_id in studies:
            return studies.get(study_id)
        return SectionEmbeddings(np.zeros((len(ECHO_SECTIONS), studies.dim), np.float32), np.zeros(len(ECHO_SECTIONS)))

    def _studies_with_views(self, views: Iterable[str]) -> np.ndarray:
        loaded = self._load()
        bits = view_bits(views)
        return np.asarray(loaded.catalog.study_ids[(loaded.view_masks & bits) != 0], dtype=np.int64)

    def _filters(
        self, study_id: int, exclude_same_patient: bool, views: Iterable[str] | None
    ) -> tuple[int, int | None, np.ndarray | None]:
        info = self.catalog.study(study_id)
        studies = self._studies_with_views(views) if views is not None else None
        if self._candidates is not None:
            studies = self._candidates if studies is None else np.intersect1d(studies, self._candidates)
        return info.study_id, info.patient_id if exclude_same_patient else None, studies

    def allowed_ids(
        self,
        study_id: int,
        section: str,
        *,
        exclude_same_patient: bool = True,
        before_date: dt.date | None = None,
        views: Iterable[str] | None = None,
    ) -> np.ndarray:
        """The report-section IDs a search for ``section`` of ``study_id`` may return (see the module docstring)."""
        study, patient, studies = self._filters(study_id, exclude_same_patient, views)
        return self.report_sections.allowed_ids(
            section, exclude_study=study, exclude_patient=patient, before_date=before_date, studies=studies
        )

    def candidates(
        self,
        study_id: int,
        section: str,
        *,
        exclude_same_patient: bool = True,
        before_date: dt.date | None = None,
        views: Iterable[str] | None = None,
    ) -> Candidates:
        """What a search for ``section`` of ``study_id`` may return, as the index's filter takes it."""
        study, patient, studies = self._filters(study_id, exclude_same_patient, views)
        return self.report_sections.candidates(
            section, exclude_study=study, exclude_patient=patient, before_date=before_date, studies=studies
        )

    def search_section(
        self,
        study_id: int,
        section: str,
        k: int,
        *,
        exclude_same_patient: bool = True,
        before_date: dt.date | None = None,
        views: Iterable[str] | None = None,
        mmr_lambda: float | None = None,
        mmr_pool: int | None = None,
        with_text: bool = True,
        query: SectionEmbeddings | None = None,
    ) -> tuple[list[SectionHit], int]:
        """The hits of one section of one study, and how many candidates passed the filters.

        Returns an empty list when the study has no evidence for the section.
        """
        _check_params(k, mmr_lambda, mmr_pool, views)
        embeddings = query if query is not None else self.section_embeddings(study_id)
        row = ECHO_SECTIONS.index(section)
        allowed = self.candidates(
            study_id, section, exclude_same_patient=exclude_same_patient, before_date=before_date, views=views
        )
        if not embeddings.has_evidence[row]:
            return [], allowed.count
        vector = embeddings.vectors[row]
        index = self.report_sections
        if mmr_lambda is None:
            sims, ids = self._nearest(study_id, section, vector, k, allowed, (exclude_same_patient, before_date, views))
        else:
            pool = max(mmr_pool or 4 * k, k)
            sims, ids = index.search(vector, pool, allowed)
            order = mmr_order(sims, index.vectors_of(section, ids), k, mmr_lambda)
            sims, ids = sims[order], ids[order]
        texts = Catalog.texts(self.store, ids) if with_text and len(ids) else {}
        catalog = self.catalog
        hits = []
        owners = catalog.infos(index.study_ids[index.rows(ids)])
        for rank, (sim, sid, study) in enumerate(zip(sims.tolist(), ids.tolist(), owners, strict=True), start=1):
            hits.append(
                SectionHit(
                    section=section,
                    report_section_id=int(sid),
                    study_id=study.study_id,
                    patient_pseudonym=study.patient_pseudonym,
                    similarity=float(sim),
                    text=texts.get(int(sid)) if with_text else None,
                    rank=rank,
                    study_date=study.study_date,
                )
            )
        return hits, allowed.count

    def _nearest(
        self,
        study_id: int,
        section: str,
        vector: np.ndarray,
        k: int,
        allowed: Candidates,
        filters: tuple[bool, dt.date | None, Iterable[str] | None],
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best allowed hits, from a short cache of recent searches.

        A draft asks each section twice with the same filters (k=5 cases to show, k=50 to vote):
        every search fetches at least :data:`_PREFETCH` hits, and a later search of the same study,
        section and filters with a smaller k reads the first k of them.
        """
        exclude, before, views = filters
        key = (int(study_id), section, exclude, before, None if views is None else frozenset(views))
        cached = self._recent.get(key)
        if cached is None or cached[0] < k:
            want = max(k, _PREFETCH)
            sims, ids = self.report_sections.search(vector, want, allowed)
            cached = (want, sims, ids)
            self._recent[key] = cached
            while len(self._recent) > _RECENT:
                self._recent.pop(next(iter(self._recent)))
        _, sims, ids = cached
        return sims[:k], ids[:k]

    def retrieve(
        self,
        study_id: int,
        k: int = 5,
        *,
        exclude_same_patient: bool = True,
        before_date: dt.date | None = None,
        views: set[str] | frozenset[str] | None = None,
        mmr_lambda: float | None = None,
        mmr_pool: int | None = None,
        sections: Iterable[str] | None = None,
        with_text: bool = True,
    ) -> StudyRetrieval:
        """Retrieve the ``k`` nearest report sections of other studies for each section of ``study_id``.

        Args:
            study_id: the query study (a Study row ID).
            k: hits per section.
            exclude_same_patient: leave out every study of the query's patient (the default; a study of
                the same patient is a prior, not a reference case).
            before_date: only candidate studies dated strictly before this date (undated ones are left
                out). Stored dates are shifted per patient, so across patients this cut is approximate by
                up to the configured shift range.
            views: only candidate studies holding a clip of at least one of these views.
            mmr_lambda: re-order by MMR with this lambda (1 = plain ranking, lower = more diverse).
            mmr_pool: how many of the best allowed candidates MMR chooses from (default 4k).
            sections: search these sections only (default all 15).
            with_text: read the hits' texts from the store.

        Raises:
            UnknownStudyError: ``study_id`` is not stored.
            RetrievalError: a bad parameter (unknown view or section, k < 1, lambda outside [0, 1]).
        """
        _check_params(k, mmr_lambda, mmr_pool, views)
        info = self.catalog.study(study_id)
        wanted = list(ECHO_SECTIONS if sections is None else sections)
        unknown = [s for s in wanted if s not in ECHO_SECTIONS]
        if unknown:
            raise RetrievalError(f"unknown section(s) {unknown}; allowed sections: {list(ECHO_SECTIONS)}")
        embeddings = self.section_embeddings(study_id)
        hits: dict[str, list[SectionHit]] = {}
        counts: dict[str, int] = {}
        no_evidence = [s for s in embeddings.no_evidence if s in wanted]
        for section in wanted:
            found, n_allowed = self.search_section(
                study_id,
                section,
                k,
                exclude_same_patient=exclude_same_patient,
                before_date=before_date,
                views=views,
                mmr_lambda=mmr_lambda,
                mmr_pool=mmr_pool,
                with_text=False,
                query=embeddings,
            )
            counts[section] = n_allowed
            if section not in no_evidence:
                hits[section] = found
        if with_text:  # one query for the texts of every section's hits
            texts = Catalog.texts(self.store, (h.report_section_id for found in hits.values() for h in found))
            hits = {
                section: [replace(h, text=texts.get(h.report_section_id)) for h in found]
                for section, found in hits.items()
            }
        log.debug("study %d: %d sections searched, %d without evidence", study_id, len(hits), len(no_evidence))
        return StudyRetrieval(
            study_id=info.study_id,
            patient_pseudonym=info.patient_pseudonym,
            sections=hits,
            no_evidence=no_evidence,
            candidates=counts,
            params=self.params(
                k=k,
                exclude_same_patient=exclude_same_patient,
                before_date=before_date,
                views=views,
                mmr_lambda=mmr_lambda,
                mmr_pool=mmr_pool,
            ),
        )

    def params(
        self,
        *,
        k: int,
        exclude_same_patient: bool,
        before_date: dt.date | None,
        views: Iterable[str] | None,
        mmr_lambda: float | None,
        mmr_pool: int | None,
    ) -> RetrievalParams:
        return RetrievalParams(
            k=k,
            exclude_same_patient=exclude_same_patient,
            before_date=before_date,
            views=tuple(sorted(views)) if views is not None else None,
            mmr_lambda=mmr_lambda,
            mmr_pool=(mmr_pool or 4 * k) if mmr_lambda is not None else None,
            weights=self.weights.name,
            weights_fingerprint=self.weights.fingerprint,
            hard_views=self.hard_views,
            index_kind=self.index_kind,
            embeddings=self.embeddings_folder.name,
            restricted_to=len(self._candidates) if self._candidates is not None else None,
        )


def _check_params(k: int, mmr_lambda: float | None, mmr_pool: int | None, views: Iterable[str] | None) -> None:
    if k < 1:
        raise RetrievalError(f"k={k} is invalid; ask for at least 1 hit per section")
    if mmr_lambda is not None and not 0.0 <= mmr_lambda <= 1.0:
        raise RetrievalError(f"mmr_lambda={mmr_lambda} is outside [0, 1]; 1 = plain ranking, 0.5 = balanced")
    if mmr_pool is not None and mmr_pool < 1:
        raise RetrievalError(f"mmr_pool={mmr_pool} is invalid; use at least k")
    if views is not None:
        unknown = sorted(v for v in views if v not in COARSE_VIEWS)
        if unknown:
            raise RetrievalError(f"unknown view(s) {unknown}; allowed views: {list(COARSE_VIEWS)}")
