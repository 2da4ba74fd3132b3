"""The case library: what drafting, comparison and the service open, built once by ``rag index library``.

A library folder (``<workspace>/indexes/library/`` by default) holds, under one manifest:

- ``sections/NN/``: one FAISS index per anatomical section (``NN`` = its position in ``ECHO_SECTIONS``)
  over the text vectors of the stored report sections of that name, memory-mapped when opened: a
  search for the Mitral Valve neighbours of a study only ever touches Mitral Valve vectors;
- ``catalog/``: the store metadata the retriever and the votes need (study -> patient -> date,
  section -> study, measurements), as sorted arrays (:class:`~rag.index.catalog.Catalog`);
- ``grades.npy``: (sections, findings) int8, the grade 0-3 of every finding stated in every report
  section (:mod:`rag.vocab.grades`), read once here so that votes never read report text;
- ``clips/``: the clip vectors and view probabilities, sorted by study, memory-mapped: a query study's
  section embeddings are made from its own rows only;
- ``study_views.npy``: per study, a bit mask of the views it has clips of (declared, else predicted).

The manifest names the encoder and checkpoint the vectors come from and a stamp of the store (row
counts and largest IDs): a library built from another checkpoint, or older than the store, is refused
with the command that rebuilds or updates it. :meth:`CaseLibrary.update` adds what the store gained
since (new studies, clips, report sections) without rebuilding the indexes.
"""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, select

from rag.core.clipfile import write_atomic
from rag.core.errors import ManifestMismatchError, VectorIndexError
from rag.core.manifest import VectorManifest, mismatch
from rag.core.validation import format_validation_error
from rag.core.version import __version__
from rag.index.catalog import Catalog
from rag.index.protocol import VectorIndex
from rag.store import Clip, Measurement, Report, ReportSection, Store, Study
from rag.vocab.findings import PHENOTYPES
from rag.vocab.grades import statement_grade
from rag.vocab.sections import ECHO_SECTIONS
from rag.vocab.views import COARSE_VIEWS

__all__ = [
    "LIBRARY_DIR",
    "CaseLibrary",
    "ClipTable",
    "LibraryManifest",
    "StoreStamp",
    "embeddings_manifest",
    "store_stamp",
]

log = logging.getLogger(__name__)

LIBRARY_DIR = "library"
"""The library's folder name under ``<workspace>/indexes/``."""
FORMAT = "rag-case-library/1"
_MANIFEST = "manifest.json"
_CLIP_ARRAYS = ("ids", "study", "vectors", "view_probs")
FINDINGS: tuple[str, ...] = tuple(p.name for p in PHENOTYPES.values() if p.kind == "finding")
"""The columns of ``grades.npy``."""


def _rebuild(folder: Path) -> str:
    return f"`rag index library --out {folder}` (after `rag embed` with the checkpoint in use)"


class StoreStamp(BaseModel):
    """What a library was built from: row counts and largest IDs of studies, clips and reports, and the
    largest IDs of report sections and measurements.

    Ingestion only adds rows (report sections and measurements with their report), and deleting a
    study, clip or report changes a count, so a changed store changes the stamp; counting the million
    report sections themselves would cost more than the rest of opening a library.
    """

    model_config = ConfigDict(extra="forbid")

    studies: tuple[int, int]
    clips: tuple[int, int]
    reports: tuple[int, int]
    last_report_section: int
    last_measurement: int


def store_stamp(store: Store) -> StoreStamp:
    """The store's :class:`StoreStamp` now (five small queries)."""
    with store.session() as s:

        def counted(col: Any) -> tuple[int, int]:
            count, last = s.execute(select(func.count(col), func.max(col))).one()
            return int(count or 0), int(last or 0)

        return StoreStamp(
            studies=counted(Study.id),
            clips=counted(Clip.id),
            reports=counted(Report.id),
            last_report_section=int(s.scalar(select(func.max(ReportSection.id))) or 0),
            last_measurement=int(s.scalar(select(func.max(Measurement.id))) or 0),
        )


class LibraryManifest(VectorManifest):
    """What a case library holds (``<library>/manifest.json``)."""

    format: Literal["rag-case-library/1"] = "rag-case-library/1"
    view_classes: list[str] = Field(description="The view head's classes, the columns of the view probabilities.")
    findings: list[str] = Field(description="The columns of grades.npy.")
    index_kind: str = Field(description="The kind asked for the per-section indexes (auto: chosen by size).")
    store: StoreStamp
    counts: dict[str, int] = Field(default_factory=dict)
    embeddings_dir: str | None = None
    rag_version: str = __version__


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
        for name in _CLIP_ARRAYS:
            _save_npy(folder / f"{name}.npy", getattr(self, name))

    @classmethod
    def open(cls, folder: Path) -> ClipTable:
        ids, study, vectors, probs = (_load_npy(folder / f"{name}.npy") for name in _CLIP_ARRAYS)
        return cls(ids, study, vectors, probs)


def _save_npy(path: Path, arr: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    write_atomic(path, buf.getvalue())


def _load_npy(path: Path) -> np.ndarray:
    try:
        # a plain ndarray over the mapped memory: NumPy's memmap subclass makes every element read slow
        arr: np.ndarray = np.asarray(np.load(path, mmap_mode="r", allow_pickle=False))
    except (OSError, ValueError) as e:
        raise VectorIndexError(f"{path} cannot be read ({e}); rebuild the case library: {_rebuild(path.parent)}") from e
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


def study_view_masks(catalog: Catalog, clips: ClipTable, view_classes: tuple[str, ...]) -> np.ndarray:
    """(s,) int32 aligned with ``catalog.study_ids``: bit ``i`` set when the study has a clip of ``COARSE_VIEWS[i]``.

    A clip counts by the view its source declared, else by the view head's most probable class.
    """
    bit = {v: 1 << i for i, v in enumerate(COARSE_VIEWS)}
    masks = np.zeros(len(catalog.study_ids), dtype=np.int32)

    def mark(study: np.ndarray, bits: np.ndarray) -> None:
        rows = np.searchsorted(catalog.study_ids, study)
        ok = (rows < len(catalog.study_ids)) & (
            catalog.study_ids[np.minimum(rows, len(catalog.study_ids) - 1)] == study
        )
        np.bitwise_or.at(masks, rows[ok], bits[ok])

    declared = catalog.clip_view >= 0
    mark(catalog.clip_study[declared], (1 << catalog.clip_view[declared].astype(np.int32)).astype(np.int32))
    if len(clips.ids):
        predicted = np.array([bit.get(view_classes[int(i)], 0) for i in np.argmax(clips.view_probs, axis=1)], np.int32)
        rows = np.searchsorted(catalog.clip_ids, clips.ids)
        known = (rows < len(catalog.clip_ids)) & (
            catalog.clip_ids[np.minimum(rows, len(catalog.clip_ids) - 1)] == clips.ids
        )
        undeclared = known.copy()
        undeclared[known] = catalog.clip_view[rows[known]] < 0
        mark(clips.study[undeclared], predicted[undeclared])
    return masks


class CaseLibrary:
    """An opened case library (see the module docstring). Indexes load on first use, memory-mapped."""

    def __init__(
        self,
        folder: Path,
        manifest: LibraryManifest,
        catalog: Catalog,
        clips: ClipTable,
        grades: np.ndarray,
        study_views: np.ndarray,
    ) -> None:
        self.folder = folder
        self.manifest = manifest
        self.catalog = catalog
        self.clips = clips
        self.grades = grades
        self.study_views = study_views
        self._indexes: dict[int, VectorIndex] = {}

    # -- opening --------------------------------------------------------------------------------------

    @staticmethod
    def read_manifest(folder: Path) -> LibraryManifest:
        """The library's manifest.

        Raises:
            VectorIndexError: no library in ``folder``, or a manifest that cannot be read.
        """
        path = Path(folder) / _MANIFEST
        if not path.is_file():
            raise VectorIndexError(f"No case library at {folder} ({_MANIFEST} missing); build one: {_rebuild(folder)}")
        try:
            return LibraryManifest.model_validate_json(path.read_bytes())
        except (OSError, ValidationError) as e:
            detail = format_validation_error(e) if isinstance(e, ValidationError) else str(e)
            raise VectorIndexError(
                f"{path} is not a case-library manifest ({detail}); rebuild: {_rebuild(folder)}"
            ) from e

    @classmethod
    def open(
        cls,
        folder: Path,
        *,
        encoder: str | None = None,
        checkpoint_sha256: str | None = None,
        store: Store | None = None,
    ) -> CaseLibrary:
        """Open a library, refusing one built for another encoder or checkpoint, or older than ``store``.

        Raises:
            ManifestMismatchError: another encoder or checkpoint, or the store has changed since the build;
                the message names the command that rebuilds (or updates) the library.
            VectorIndexError: files missing or unreadable.
        """
        folder = Path(folder)
        manifest = cls.read_manifest(folder)
        problem = mismatch(manifest, encoder=encoder, checkpoint_sha256=checkpoint_sha256)
        if problem is not None:
            raise ManifestMismatchError(f"The case library at {folder} {problem}; rebuild it: {_rebuild(folder)}")
        if store is not None:
            now = store_stamp(store)
            if now != manifest.store:
                raise ManifestMismatchError(
                    f"The case library at {folder} is older than the case store (built from "
                    f"{_stamp_text(manifest.store)}; the store now has {_stamp_text(now)}); update it: "
                    f"`rag index library --out {folder} --update`"
                )
        return cls(
            folder,
            manifest,
            Catalog.open(folder / "catalog"),
            ClipTable.open(folder / "clips"),
            _load_npy(folder / "grades.npy"),
            _load_npy(folder / "study_views.npy"),
        )

    def index(self, section: str) -> VectorIndex:
        """The vector index of one section's report-section vectors (loaded on first use, memory-mapped)."""
        code = ECHO_SECTIONS.index(section)
        found = self._indexes.get(code)
        if found is None:
            from rag.index.store import load_index

            found, _ = load_index(
                self.folder / "sections" / f"{code:02d}",
                expect_encoder=self.manifest.encoder,
                expect_checkpoint_sha256=self.manifest.checkpoint_sha256,
                expect_dim=self.manifest.dim,
            )
            self._indexes[code] = found
        return found

    def views_of(self, study_id: int) -> frozenset[str]:
        """The views a study has clips of (declared, else predicted)."""
        rows = self.catalog.study_ids
        row = int(np.searchsorted(rows, int(study_id)))
        if row >= len(rows) or int(rows[row]) != int(study_id):
            return frozenset()
        mask = int(self.study_views[row])
        return frozenset(v for i, v in enumerate(COARSE_VIEWS) if mask >> i & 1)

    def studies_with_views(self, views: frozenset[str]) -> np.ndarray:
        """Ascending study IDs with a clip of at least one of ``views``."""
        bits = sum(1 << COARSE_VIEWS.index(v) for v in views if v in COARSE_VIEWS)
        return np.asarray(self.catalog.study_ids[(np.asarray(self.study_views) & bits) != 0], dtype=np.int64)

    # -- building -------------------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        store: Store,
        embeddings: Path,
        folder: Path,
        *,
        kind: str = "auto",
        encoder: str | None = None,
        checkpoint_sha256: str | None = None,
        progress: bool = False,
    ) -> CaseLibrary:
        """Build a library from the store and a ``rag embed`` folder, replacing what ``folder`` held.

        Raises:
            EmbeddingMismatchError: the embeddings come from another encoder or checkpoint than asked.
            VectorIndexError: the embeddings lack clip or section vectors, or their dimensions differ.
        """
        from rag.encoders.embed import load_embeddings

        folder = Path(folder)
        emb_manifest = embeddings_manifest(embeddings)
        stamp = store_stamp(store)
        catalog = Catalog.load(store)
        clips = load_embeddings(embeddings, "clips", encoder=encoder, sha256=checkpoint_sha256)
        texts = load_embeddings(embeddings, "sections", encoder=encoder, sha256=checkpoint_sha256)
        if "view_probs" not in clips.extra:
            raise VectorIndexError(f"{embeddings} holds clip vectors without view probabilities; re-run `rag embed`")
        dim = int(texts.vectors.shape[1]) if texts.vectors.ndim == 2 and len(texts.ids) else int(clips.vectors.shape[1])
        if clips.vectors.ndim == 2 and len(clips.ids) and int(clips.vectors.shape[1]) != dim:
            raise VectorIndexError(
                f"clip vectors are {clips.vectors.shape[1]}-d but section vectors {dim}-d in {embeddings}; "
                "re-run `rag embed`"
            )
        view_classes = tuple(emb_manifest.get("view_classes") or COARSE_VIEWS)
        table = _clip_table(catalog, clips.ids, clips.vectors, clips.extra["view_probs"])
        section_vectors = _section_vectors(catalog, texts.ids, texts.vectors, dim)
        grades = section_grades(Catalog.texts(store, catalog.section_ids), catalog.section_ids, catalog.section_codes)
        manifest = LibraryManifest(
            encoder=str(emb_manifest["encoder"]),
            checkpoint_sha256=str(emb_manifest["checkpoint_sha256"]),
            dim=dim,
            preprocessing=dict(emb_manifest.get("preprocessing") or {}),
            created_at=datetime.now(UTC),
            view_classes=list(view_classes),
            findings=list(FINDINGS),
            index_kind=kind,
            store=stamp,
            embeddings_dir=str(Path(embeddings).resolve()),
        )
        library = cls(folder, manifest, catalog, table, grades, study_view_masks(catalog, table, view_classes))
        library._write_all(section_vectors, kind=kind, progress=progress)
        return CaseLibrary.open(folder)

    def update(self, store: Store, embeddings: Path) -> dict[str, int]:
        """Bring the library up to date with the store and a ``rag embed`` folder of the same checkpoint.

        Report sections the store gained are added to their section's index, ones it lost removed; the
        catalog, clip table, grades and view masks are rewritten (they are small beside the vectors).
        Returns the counts of added and removed report sections and clips.

        Raises:
            ManifestMismatchError: the embeddings come from another encoder or checkpoint.
        """
        from rag.encoders.embed import load_embeddings

        emb_manifest = embeddings_manifest(embeddings)
        problem = mismatch(
            self.manifest,
            encoder=str(emb_manifest["encoder"]),
            checkpoint_sha256=str(emb_manifest["checkpoint_sha256"]),
        )
        if problem is not None:
            raise ManifestMismatchError(
                f"The case library at {self.folder} {problem}; rebuild it: {_rebuild(self.folder)}"
            )
        stamp = store_stamp(store)
        catalog = Catalog.load(store)
        clips = load_embeddings(embeddings, "clips")
        texts = load_embeddings(embeddings, "sections")
        table = _clip_table(catalog, clips.ids, clips.vectors, clips.extra["view_probs"])
        section_vectors = _section_vectors(catalog, texts.ids, texts.vectors, self.manifest.dim)
        old_ids = np.asarray(self.catalog.section_ids)
        new_ids = catalog.section_ids
        added = np.setdiff1d(new_ids, old_ids)
        removed = np.setdiff1d(old_ids, new_ids)
        grades = np.zeros((len(new_ids), len(FINDINGS)), dtype=np.int8)
        kept_new = np.isin(new_ids, old_ids)
        grades[kept_new] = np.asarray(self.grades)[np.searchsorted(old_ids, new_ids[kept_new])]
        fresh = ~kept_new
        if fresh.any():
            grades[fresh] = section_grades(
                Catalog.texts(store, new_ids[fresh]), new_ids[fresh], catalog.section_codes[fresh]
            )
        view_classes = tuple(self.manifest.view_classes)
        for code, section in enumerate(ECHO_SECTIONS):
            gone = removed[np.isin(removed, old_ids[np.asarray(self.catalog.section_codes) == code])]
            new = added[np.isin(added, new_ids[catalog.section_codes == code])]
            if not len(gone) and not len(new):
                continue
            index = self._writable_index(section)
            if len(gone):
                index.remove(gone)
            if len(new):
                rows = np.searchsorted(new_ids, new)
                keep = ~np.all(section_vectors[rows] == 0, axis=1)
                if keep.any():
                    index.add(new[keep], section_vectors[rows[keep]])
            self._save_index(code, index)
        self.catalog, self.clips, self.grades = catalog, table, grades
        self.study_views = study_view_masks(catalog, table, view_classes)
        self.manifest = self.manifest.model_copy(
            update={"store": stamp, "created_at": datetime.now(UTC), "counts": self._counts()}
        )
        self._write_tables()
        log.info("case library updated: %d sections added, %d removed", len(added), len(removed))
        return {"sections_added": len(added), "sections_removed": len(removed), "clips": len(table.ids)}

    # -- writing --------------------------------------------------------------------------------------

    def _counts(self) -> dict[str, int]:
        return {
            "studies": len(self.catalog.study_ids),
            "clips": len(self.clips.ids),
            "report_sections": len(self.catalog.section_ids),
        }

    def _write_all(self, section_vectors: np.ndarray, *, kind: str, progress: bool) -> None:
        from rag.index.faiss_index import build_index

        (self.folder / _MANIFEST).unlink(missing_ok=True)  # incomplete until the manifest is back
        codes = np.asarray(self.catalog.section_codes)
        for code in range(len(ECHO_SECTIONS)):
            rows = np.flatnonzero(codes == code)
            rows = rows[~np.all(section_vectors[rows] == 0, axis=1)] if len(rows) else rows
            ids = np.asarray(self.catalog.section_ids)[rows]
            index = build_index(
                section_vectors[rows] if len(rows) else np.zeros((0, self.manifest.dim), np.float32),
                ids,
                kind=kind,
                progress=progress,
            )
            self._save_index(code, index)
        self.manifest = self.manifest.model_copy(update={"counts": self._counts()})
        self._write_tables()

    def _write_tables(self) -> None:
        self.catalog.save(self.folder / "catalog")
        self.clips.save(self.folder / "clips")
        _save_npy(self.folder / "grades.npy", self.grades)
        _save_npy(self.folder / "study_views.npy", self.study_views)
        write_atomic(self.folder / _MANIFEST, (self.manifest.model_dump_json(indent=2) + "\n").encode())

    def _save_index(self, code: int, index: VectorIndex) -> None:
        from rag.index.store import manifest_for, save_index

        if len(index) == 0 and getattr(index, "is_trained", True) is False:
            from rag.index.faiss_index import build_index

            index = build_index(np.zeros((0, self.manifest.dim), np.float32), np.zeros(0, np.int64), kind="flat")
        manifest = manifest_for(
            index,
            name=f"section-{code:02d}",
            encoder=self.manifest.encoder,
            checkpoint_sha256=self.manifest.checkpoint_sha256,
            source="sections",
            preprocessing=self.manifest.preprocessing,
            embeddings_dir=self.manifest.embeddings_dir,
        )
        save_index(index, self.folder / "sections" / f"{code:02d}", manifest)
        self._indexes[code] = index

    def _writable_index(self, section: str) -> VectorIndex:
        from rag.index.store import load_index

        code = ECHO_SECTIONS.index(section)
        index, _ = load_index(self.folder / "sections" / f"{code:02d}", mmap=False)
        return index


def _stamp_text(stamp: StoreStamp) -> str:
    return (
        f"{stamp.studies[0]} studies, {stamp.clips[0]} clips, {stamp.reports[0]} reports, last report section "
        f"{stamp.last_report_section}, last measurement {stamp.last_measurement}"
    )


def embeddings_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a ``rag embed`` folder.

    Raises:
        VectorIndexError: the folder has no readable manifest.
    """
    path = Path(folder) / "manifest.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise VectorIndexError(
            f"{folder} is not an embeddings folder (no manifest.json); pass the folder printed by `rag embed`"
        ) from None
    except (OSError, json.JSONDecodeError) as e:
        raise VectorIndexError(f"cannot read {path}: {e}") from e
    return data


def _clip_table(catalog: Catalog, ids: np.ndarray, vectors: np.ndarray, view_probs: np.ndarray) -> ClipTable:
    """The embedded clips that are still stored, with their study, sorted by study."""
    ids = np.asarray(ids, np.int64)
    rows = np.searchsorted(catalog.clip_ids, ids)
    known = (
        (rows < len(catalog.clip_ids)) & (catalog.clip_ids[np.minimum(rows, max(len(catalog.clip_ids) - 1, 0))] == ids)
        if len(catalog.clip_ids)
        else np.zeros(len(ids), bool)
    )
    if not known.all():
        log.warning("%d clip vectors belong to clips no longer stored; left out", int((~known).sum()))
    return ClipTable.sorted_by_study(
        ids[known], catalog.clip_study[rows[known]], np.asarray(vectors)[known], np.asarray(view_probs)[known]
    )


def _section_vectors(catalog: Catalog, ids: np.ndarray, vectors: np.ndarray, dim: int) -> np.ndarray:
    """(n, dim) float32 aligned with ``catalog.section_ids``; zero rows for sections without a vector."""
    out = np.zeros((len(catalog.section_ids), dim), dtype=np.float32)
    ids = np.asarray(ids, np.int64)
    if not len(ids) or not len(catalog.section_ids):
        return out
    order = np.argsort(ids)
    sorted_ids = ids[order]
    pos = np.minimum(np.searchsorted(sorted_ids, catalog.section_ids), len(sorted_ids) - 1)
    found = sorted_ids[pos] == catalog.section_ids
    out[found] = np.asarray(vectors, np.float32)[order[pos[found]]]
    missing = int((~found).sum())
    if missing:
        log.warning("%d report sections of the store have no vector; run `rag embed` to add them", missing)
    return out
