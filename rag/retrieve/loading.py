"""Where a retriever's vectors come from: an opened case library (what drafting uses) or a ``rag embed``
folder and the store (indexes built in memory: fitting and evaluation)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.core.errors import RetrievalError, VectorIndexError
from rag.index.catalog import Catalog
from rag.index.library import CaseLibrary, clip_table, embeddings_manifest, study_view_masks
from rag.retrieve.sections import ReportSectionIndex
from rag.retrieve.study import IndexFactory, IndexKind, StudyIndex
from rag.retrieve.weights import ViewWeights
from rag.store import Store
from rag.vocab.views import COARSE_VIEWS

__all__ = ["Loaded", "from_embeddings", "from_library"]

log = logging.getLogger(__name__)


@dataclass
class Loaded:
    """A retriever's heavy state.

    Attributes:
        view_masks: (s,) int32 aligned with ``catalog.study_ids``: bit i set when the study has a clip
            of ``COARSE_VIEWS[i]``.
    """

    catalog: Catalog
    studies: StudyIndex
    sections: ReportSectionIndex
    view_classes: tuple[str, ...]
    view_masks: np.ndarray


def from_library(library: CaseLibrary, weights: ViewWeights, *, hard: bool) -> Loaded:
    """The state over an opened case library: its indexes, catalog and clip table, as saved."""
    view_classes = tuple(library.manifest.view_classes)
    weights.columns_for(view_classes)  # refuse a model whose view classes the table lacks
    catalog = library.catalog
    clips = library.clips
    studies = StudyIndex(
        clips.ids, clips.vectors, clips.view_probs, clips.study, weights, views=view_classes, hard=hard
    )
    sections = ReportSectionIndex(
        catalog.section_ids, None, catalog.section_codes, catalog.section_study, catalog, section_index=library.index
    )
    return Loaded(catalog, studies, sections, view_classes, np.asarray(library.study_views))


def from_embeddings(
    store: Store,
    folder: Path,
    weights: ViewWeights,
    *,
    hard: bool,
    index_kind: IndexKind,
    index_factory: IndexFactory | None,
    encoder: str | None,
    checkpoint_sha256: str | None,
) -> Loaded:
    """The state over a ``rag embed`` folder and the store, the section indexes built in memory on first use.

    Raises:
        RetrievalError: not an embeddings folder, vectors missing, or clip and section vectors of other sizes.
        EmbeddingMismatchError: the vectors come from another encoder or checkpoint than asked.
    """
    from rag.encoders.embed import load_embeddings

    try:
        manifest = embeddings_manifest(folder)
    except VectorIndexError as e:
        raise RetrievalError(str(e)) from e
    view_classes = tuple(manifest.get("view_classes") or COARSE_VIEWS)
    weights.columns_for(view_classes)  # refuse a model whose view classes the table lacks
    for kind in ("clips", "sections"):
        if not (folder / f"{kind}.ids.npy").is_file():
            raise RetrievalError(f"{folder} holds no '{kind}' vectors; run `rag embed` first")
    clips = load_embeddings(folder, "clips", encoder=encoder, sha256=checkpoint_sha256)
    texts = load_embeddings(folder, "sections", encoder=encoder, sha256=checkpoint_sha256)
    if "view_probs" not in clips.extra:
        raise RetrievalError(f"{folder} holds clip vectors without view probabilities")
    catalog = Catalog.load(store)
    table = clip_table(catalog, clips.ids, clips.vectors, clips.extra["view_probs"])
    studies = StudyIndex(
        table.ids, table.vectors, table.view_probs, table.study, weights, views=view_classes, hard=hard
    )
    sections = ReportSectionIndex.from_embeddings(
        texts.ids, texts.vectors, catalog, index_kind=index_kind, index_factory=index_factory
    )
    if len(sections) and studies.dim and sections.dim != studies.dim:
        raise RetrievalError(
            f"clip vectors are {studies.dim}-d but report-section vectors {sections.dim}-d in {folder}; "
            "re-run `rag embed`"
        )
    return Loaded(catalog, studies, sections, view_classes, study_view_masks(catalog, table, view_classes))
