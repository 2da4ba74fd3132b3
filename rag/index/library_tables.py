"""The arrays of a case library beside its indexes: the clip table, the grades every report section
states, the views of every study, and the section vectors aligned with the catalog."""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.core.arrays import lookup
from rag.core.clipfile import write_atomic
from rag.core.errors import VectorIndexError
from rag.index.catalog import Catalog
from rag.vocab.findings import PHENOTYPES
from rag.vocab.grades import statement_grade
from rag.vocab.sections import ECHO_SECTIONS
from rag.vocab.views import COARSE_VIEWS

__all__ = [
    "FINDINGS",
    "ClipTable",
    "aligned_section_vectors",
    "clip_table",
    "clip_view_codes",
    "load_npy",
    "predicted_view_codes",
    "rebuild_command",
    "save_npy",
    "section_grades",
    "study_view_masks",
]

log = logging.getLogger(__name__)


CLIP_ARRAYS = ("ids", "study", "vectors", "view_probs")
FINDINGS: tuple[str, ...] = tuple(p.name for p in PHENOTYPES.values() if p.kind == "finding")
"""The columns of ``grades.npy``."""


def rebuild_command(folder: Path) -> str:
    """The command that rebuilds the library in ``folder``."""
    return f"`rag index library --out {folder}` (after `rag embed` with the checkpoint in use)"


class ClipTable:
    """The library's clip vectors, sorted by study (arrays memory-mapped).

    Attributes:
        ids: (c,) int64 clip IDs; study: (c,) int64 their study, ascending;
        vectors: (c, D) float32 L2-normalised; view_probs: (c, V) float32.
    """

    def __init__(self, ids: np.ndarray, study: np.ndarray, vectors: np.ndarray, view_probs: np.ndarray) -> None:
        self.ids, self.study, self.vectors, self.view_probs = ids, study, vectors, view_probs

    @classmethod
    def sorted_by_study(
        cls, ids: np.ndarray, study: np.ndarray, vectors: np.ndarray, view_probs: np.ndarray
    ) -> ClipTable:
        order = np.lexsort((ids, study))
        return cls(
            np.asarray(ids, np.int64)[order],
            np.asarray(study, np.int64)[order],
            np.ascontiguousarray(np.asarray(vectors, np.float32)[order]),
            np.ascontiguousarray(np.asarray(view_probs, np.float32)[order]),
        )

    def rows_of(self, study_id: int) -> slice:
        a, b = np.searchsorted(self.study, [int(study_id), int(study_id) + 1])
        return slice(int(a), int(b))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name in CLIP_ARRAYS:
            save_npy(folder / f"{name}.npy", getattr(self, name))

    @classmethod
    def open(cls, folder: Path) -> ClipTable:
        ids, study, vectors, probs = (load_npy(folder / f"{name}.npy") for name in CLIP_ARRAYS)
        return cls(ids, study, vectors, probs)


def save_npy(path: Path, arr: np.ndarray) -> None:
    """Write ``arr`` as ``.npy`` atomically."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    write_atomic(path, buf.getvalue())


def load_npy(path: Path) -> np.ndarray:
    """Memory-map an ``.npy`` file of the library.

    Raises:
        VectorIndexError: missing or unreadable (the message names the rebuild command).
    """
    try:
        # a plain ndarray over the mapped memory: NumPy's memmap subclass makes every element read slow
        arr: np.ndarray = np.asarray(np.load(path, mmap_mode="r", allow_pickle=False))
    except (OSError, ValueError) as e:
        raise VectorIndexError(
            f"{path} cannot be read ({e}); rebuild the case library: {rebuild_command(path.parent)}"
        ) from e
    return arr


def section_grades(texts: dict[int, str], section_ids: np.ndarray, section_codes: np.ndarray) -> np.ndarray:
    """(n, len(FINDINGS)) int8: the grade each section's text states of each finding of its own section (else 0)."""
    out = np.zeros((len(section_ids), len(FINDINGS)), dtype=np.int8)
    by_section: dict[str, list[int]] = {}
    for col, name in enumerate(FINDINGS):
        by_section.setdefault(PHENOTYPES[name].section, []).append(col)
    for row, (sid, code) in enumerate(zip(section_ids, section_codes, strict=True)):
        text = texts.get(int(sid))
        if not text:
            continue
        for col in by_section.get(ECHO_SECTIONS[int(code)], ()):
            rule = PHENOTYPES[FINDINGS[col]].rule
            assert rule is not None
            out[row, col] = statement_grade(text, rule)
    return out


def predicted_view_codes(view_probs: np.ndarray, view_classes: Sequence[str]) -> np.ndarray:
    """(c,) int16: the index into ``COARSE_VIEWS`` of the view head's most probable class of each row of
    ``view_probs`` (c, V), whose columns are ``view_classes``; -1 for a class outside ``COARSE_VIEWS`` and
    for rows without a prediction (all zero)."""
    probs = np.asarray(view_probs, dtype=np.float32)
    if probs.ndim != 2 or not probs.shape[0] or not probs.shape[1]:
        return np.full(probs.shape[0] if probs.ndim else 0, -1, dtype=np.int16)
    class_codes = np.array([COARSE_VIEWS.index(v) if v in COARSE_VIEWS else -1 for v in view_classes], np.int16)
    codes = class_codes[np.argmax(probs, axis=1)]
    return np.where(probs.max(axis=1) > 0, codes, -1).astype(np.int16)


def clip_view_codes(catalog: Catalog | None, ids: np.ndarray, predicted: np.ndarray | None = None) -> np.ndarray:
    """(n,) int16: the index into ``COARSE_VIEWS`` of each clip's view: the one its source declared in
    ``catalog``, else ``predicted`` (n,) (see :func:`predicted_view_codes`), else -1."""
    ids = np.asarray(ids, np.int64)
    codes = np.full(ids.size, -1, np.int16) if predicted is None else np.asarray(predicted, np.int16).copy()
    if catalog is not None and ids.size:
        rows, known = lookup(catalog.clip_ids, ids)
        declared = np.where(known, np.asarray(catalog.clip_view)[rows] if len(catalog.clip_ids) else -1, -1)
        codes = np.where(declared >= 0, declared, codes).astype(np.int16)
    return codes


def study_view_masks(catalog: Catalog, clips: ClipTable, view_classes: tuple[str, ...]) -> np.ndarray:
    """(s,) int32 aligned with ``catalog.study_ids``: bit ``i`` set when the study has a clip of ``COARSE_VIEWS[i]``.

    A clip counts by the view its source declared, else by the view head's most probable class.
    """
    masks = np.zeros(len(catalog.study_ids), dtype=np.int32)

    def mark(study: np.ndarray, codes: np.ndarray) -> None:
        rows, ok = lookup(catalog.study_ids, study)
        ok &= codes >= 0
        bits = np.left_shift(1, np.maximum(codes, 0).astype(np.int32)).astype(np.int32)
        np.bitwise_or.at(masks, rows[ok], bits[ok])

    mark(catalog.clip_study, np.asarray(catalog.clip_view))
    if len(clips.ids):
        codes = clip_view_codes(catalog, clips.ids, predicted_view_codes(clips.view_probs, view_classes))
        known = lookup(catalog.clip_ids, clips.ids)[1]
        mark(clips.study[known], codes[known])
    return masks


def clip_table(catalog: Catalog, ids: np.ndarray, vectors: np.ndarray, view_probs: np.ndarray) -> ClipTable:
    """The embedded clips that are still stored, with their study, sorted by study."""
    ids = np.asarray(ids, np.int64)
    rows, known = lookup(catalog.clip_ids, ids)
    if not known.all():
        log.warning("%d clip vectors belong to clips no longer stored; left out", int((~known).sum()))
    return ClipTable.sorted_by_study(
        ids[known], catalog.clip_study[rows[known]], np.asarray(vectors)[known], np.asarray(view_probs)[known]
    )


def aligned_section_vectors(catalog: Catalog, ids: np.ndarray, vectors: np.ndarray, dim: int) -> np.ndarray:
    """(n, dim) float32 aligned with ``catalog.section_ids``; zero rows for sections without a vector."""
    out = np.zeros((len(catalog.section_ids), dim), dtype=np.float32)
    ids = np.asarray(ids, np.int64)
    order = np.argsort(ids)
    pos, found = lookup(ids[order], catalog.section_ids)
    out[found] = np.asarray(vectors, np.float32)[order[pos[found]]]
    missing = int((~found).sum())
    if missing:
        log.warning("%d report sections of the store have no vector; run `rag embed` to add them", missing)
    return out
