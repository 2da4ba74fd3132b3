"""Retrieval stage: view-informed study embeddings, per-section case retrieval, neighbour votes.

::

    from rag.retrieve import CaseRetriever, NeighbourVoter, ViewWeights

    retriever = CaseRetriever(store, "ws/embeddings/echo-video-tiny@0123456789ab", ViewWeights.default())
    result = retriever.retrieve(study_id, k=3, before_date=date(2024, 1, 1), mmr_lambda=0.7)
    for section, hits in result.sections.items():
        for hit in hits:
            print(section, hit.rank, hit.study_id, f"{hit.similarity:.3f}", hit.text)
    votes = NeighbourVoter(retriever, k=50).predict(study_id)
    votes.predictions["lvef"].value, votes.predictions["lvef"].neighbours[:3]

Importing this package imports neither numpy nor the store: names load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.core.lazy import lazy_exports

if TYPE_CHECKING:
    from rag.retrieve.fit import FitResult, fit_view_weights, split_patients
    from rag.retrieve.protocol import Retriever
    from rag.retrieve.results import RetrievalParams, SectionHit, StudyRetrieval, mmr_order
    from rag.retrieve.retriever import CaseRetriever
    from rag.retrieve.sections import ReportSectionIndex
    from rag.retrieve.study import SectionEmbeddings, StudyIndex, clip_section_weights, study_section_embeddings
    from rag.retrieve.thresholds import Thresholds, thresholds_path
    from rag.retrieve.voting import NeighbourVoter, Prediction, StudyPredictions, fit_thresholds
    from rag.retrieve.weights import ViewWeights

_LAZY: dict[str, str] = {
    "Retriever": "rag.retrieve.protocol",
    "ViewWeights": "rag.retrieve.weights",
    "SectionEmbeddings": "rag.retrieve.study",
    "StudyIndex": "rag.retrieve.study",
    "ReportSectionIndex": "rag.retrieve.sections",
    "clip_section_weights": "rag.retrieve.study",
    "study_section_embeddings": "rag.retrieve.study",
    "CaseRetriever": "rag.retrieve.retriever",
    "RetrievalParams": "rag.retrieve.results",
    "SectionHit": "rag.retrieve.results",
    "StudyRetrieval": "rag.retrieve.results",
    "mmr_order": "rag.retrieve.results",
    "NeighbourVoter": "rag.retrieve.voting",
    "Prediction": "rag.retrieve.voting",
    "StudyPredictions": "rag.retrieve.voting",
    "Thresholds": "rag.retrieve.thresholds",
    "fit_thresholds": "rag.retrieve.voting",
    "thresholds_path": "rag.retrieve.thresholds",
    "FitResult": "rag.retrieve.fit",
    "fit_view_weights": "rag.retrieve.fit",
    "split_patients": "rag.retrieve.fit",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())


__all__ = [
    "CaseRetriever",
    "FitResult",
    "NeighbourVoter",
    "Prediction",
    "ReportSectionIndex",
    "RetrievalParams",
    "Retriever",
    "SectionEmbeddings",
    "SectionHit",
    "StudyIndex",
    "StudyPredictions",
    "StudyRetrieval",
    "Thresholds",
    "ViewWeights",
    "clip_section_weights",
    "fit_thresholds",
    "fit_view_weights",
    "mmr_order",
    "split_patients",
    "study_section_embeddings",
    "thresholds_path",
]
