"""The retriever role: a stored study in, the nearest report sections of other studies per anatomical section out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from rag.index.catalog import Catalog
    from rag.retrieve.results import SectionHit, StudyRetrieval
    from rag.retrieve.study import SectionEmbeddings

__all__ = ["Retriever"]


@runtime_checkable
class Retriever(Protocol):
    """What drafting, comparison and the service ask of case retrieval.

    :class:`~rag.retrieve.retriever.CaseRetriever` fills it over a case library (or, for fitting and
    evaluation, over a ``rag embed`` folder); a test fake fills it over a handful of vectors.
    """

    @property
    def catalog(self) -> Catalog:
        """The stored studies, report sections and measurements the hits come from."""
        ...

    def section_embeddings(self, study_id: int) -> SectionEmbeddings:
        """The study's 15 view-informed section embeddings."""
        ...

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
        """The ``k`` nearest report sections of ``section`` for the study, and how many passed the filters."""
        ...

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
        """The ``k`` nearest report sections of other studies for each section of the study."""
        ...
