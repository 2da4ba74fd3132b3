"""LangChain face of the pipeline: the case and knowledge-base retrievers and the drafting chain.

Needs the ``langchain`` extra (``pip install -e ".[langchain]"``, i.e. ``langchain-core``)::

    from rag.draft import Drafter
    from rag.integrations.langchain import CaseRetrieverLC, KnowledgeBaseRetrieverLC, drafting_chain

    drafter = Drafter()
    cases = CaseRetrieverLC(drafter=drafter, section="Aortic Valve", k=3).invoke("42")  # Documents
    passages = KnowledgeBaseRetrieverLC(kb=drafter.kb, k=2).invoke("severe aortic stenosis mean gradient")
    report = drafting_chain(drafter).invoke(42)                                       # a rag.draft.Report

Documents carry the same provenance as the native objects in their metadata (study and report
section IDs, similarity, rank; chunk ID, source, heading, fused score).
"""

from __future__ import annotations

from typing import Any

try:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.runnables import Runnable, RunnableLambda
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "rag.integrations.langchain needs langchain-core: pip install -e '.[langchain]' (or pip install langchain-core)"
    ) from error
from pydantic import ConfigDict

from rag.core.errors import RagError
from rag.draft.drafter import Drafter, GeneratorName
from rag.generate.report import Report

__all__ = ["CaseRetrieverLC", "KnowledgeBaseRetrieverLC", "drafting_chain"]


class CaseRetrieverLC(BaseRetriever):
    """Retrieves prior cases' report sections for a stored study; the query is the study ID.

    Attributes:
        drafter: the workspace's drafter (its retriever and filters).
        section: one anatomical section, or None for all 15.
        k: report sections per section.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    drafter: Any
    section: str | None = None
    k: int = 5

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        if not str(query).strip().isdigit():
            raise RagError(f"the case retriever's query is a stored study ID, got {query!r}")
        drafter: Drafter = self.drafter
        found = drafter.retriever.retrieve(
            int(query), self.k, sections=[self.section] if self.section else None, with_text=True
        )
        return [
            Document(
                page_content=hit.text or "",
                metadata={
                    "kind": "case",
                    "section": hit.section,
                    "study_id": hit.study_id,
                    "report_section_id": hit.report_section_id,
                    "similarity": hit.similarity,
                    "rank": hit.rank,
                    "study_date": hit.study_date.isoformat() if hit.study_date else None,
                },
            )
            for hits in found.sections.values()
            for hit in hits
        ]


class KnowledgeBaseRetrieverLC(BaseRetriever):
    """Hybrid (dense + BM25) knowledge-base search as a LangChain retriever.

    Attributes:
        kb: a :class:`rag.kb.KnowledgeBase`.
        k: passages per query.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    kb: Any
    k: int = 5

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        if self.kb is None:
            raise RagError("no knowledge base: add one with `rag kb add --starter` or pass kb=KnowledgeBase.open(...)")
        return [
            Document(
                page_content=hit.text,
                metadata={
                    "kind": "kb",
                    "chunk_id": hit.chunk_id,
                    "source": hit.source,
                    "heading": hit.heading,
                    "score": hit.score,
                },
            )
            for hit in self.kb.search(query, self.k)
        ]


def drafting_chain(drafter: Drafter, generator: GeneratorName = "extractive") -> Runnable[Any, Report]:
    """A Runnable from a study (stored ID or DICOM folder) to its drafted :class:`Report`."""

    def draft(study: Any) -> Report:
        return drafter.draft(study, generator=generator)

    return RunnableLambda(draft, name=f"draft_report[{generator}]")
