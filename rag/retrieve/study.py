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

from rag.core.arrays import find
from rag.core.errors import RetrievalError, UnknownStudyError
from rag.retrieve.weights import ViewWeights
from rag.vocab.sections import ECHO_SECTIONS
from rag.vocab.views import COARSE_VIEWS

if TYPE_CHECKING:
    from rag.index.protocol import VectorIndex

__all__ = [
    "IndexFactory",
    "IndexKind",
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
        return find(self.study_ids, int(study_id))

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
