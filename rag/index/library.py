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

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, select

from rag.core.arrays import lookup
from rag.core.clipfile import write_atomic
from rag.core.errors import ManifestMismatchError, VectorIndexError
from rag.core.manifest import VectorManifest, mismatch
from rag.core.validation import format_validation_error
from rag.core.version import __version__
from rag.index.catalog import Catalog
from rag.index.library_tables import (
    FINDINGS,
    ClipTable,
    aligned_section_vectors,
    clip_table,
    load_npy,
    rebuild_command,
    save_npy,
    section_grades,
    study_view_masks,
)
from rag.index.protocol import VectorIndex
from rag.store import Clip, Measurement, Report, ReportSection, Store, Study
from rag.vocab.sections import ECHO_SECTIONS
from rag.vocab.views import COARSE_VIEWS

__all__ = [
    "LIBRARY_DIR",
    "CaseLibrary",
    "ClipTable",
    "LibraryManifest",
    "StoreStamp",
    "clip_table",
    "embeddings_manifest",
    "store_stamp",
    "study_view_masks",
]

log = logging.getLogger(__name__)

LIBRARY_DIR = "library"
"""The library's folder name under ``<workspace>/indexes/``."""
FORMAT = "rag-case-library/1"
_MANIFEST = "manifest.json"


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
            raise VectorIndexError(
                f"No case library at {folder} ({_MANIFEST} missing); build one: {rebuild_command(folder)}"
            )
        try:
            return LibraryManifest.model_validate_json(path.read_bytes())
        except (OSError, ValidationError) as e:
            detail = format_validation_error(e) if isinstance(e, ValidationError) else str(e)
            raise VectorIndexError(
                f"{path} is not a case-library manifest ({detail}); rebuild: {rebuild_command(folder)}"
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
            raise ManifestMismatchError(
                f"The case library at {folder} {problem}; rebuild it: {rebuild_command(folder)}"
            )
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
            load_npy(folder / "grades.npy"),
            load_npy(folder / "study_views.npy"),
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

    def stated_grades(self, section_ids: Sequence[int], finding: str) -> np.ndarray:
        """(n,) int: the grade of ``finding`` each report section's text states (0 for sections not catalogued).

        Raises:
            VectorIndexError: the library holds no grades of ``finding``.
        """
        if finding not in self.manifest.findings:
            raise VectorIndexError(f"the case library has no grades of {finding!r}; it holds {self.manifest.findings}")
        rows, found = lookup(self.catalog.section_ids, np.asarray(section_ids, dtype=np.int64))
        grades = np.asarray(self.grades[rows, self.manifest.findings.index(finding)], dtype=np.int64)
        return np.where(found, grades, 0)

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
        table = clip_table(catalog, clips.ids, clips.vectors, clips.extra["view_probs"])
        section_vectors = aligned_section_vectors(catalog, texts.ids, texts.vectors, dim)
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
        Returns the counts of added and removed report sections and clips. The manifest is taken away
        while the folder changes and written back last: an update that fails half-way leaves a folder
        that is refused with the rebuild command, never one that looks complete.

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
                f"The case library at {self.folder} {problem}; rebuild it: {rebuild_command(self.folder)}"
            )
        stamp = store_stamp(store)
        catalog = Catalog.load(store)
        clips = load_embeddings(embeddings, "clips")
        texts = load_embeddings(embeddings, "sections")
        table = clip_table(catalog, clips.ids, clips.vectors, clips.extra["view_probs"])
        section_vectors = aligned_section_vectors(catalog, texts.ids, texts.vectors, self.manifest.dim)
        old_ids = np.asarray(self.catalog.section_ids)
        new_ids = catalog.section_ids
        added = np.setdiff1d(new_ids, old_ids)
        removed = np.setdiff1d(old_ids, new_ids)
        grades = np.zeros((len(new_ids), len(FINDINGS)), dtype=np.int8)
        kept_new = np.isin(new_ids, old_ids)
        grades[kept_new] = np.asarray(self.grades)[lookup(old_ids, new_ids[kept_new])[0]]
        fresh = ~kept_new
        if fresh.any():
            grades[fresh] = section_grades(
                Catalog.texts(store, new_ids[fresh]), new_ids[fresh], catalog.section_codes[fresh]
            )
        view_classes = tuple(self.manifest.view_classes)
        # everything is read; from here the folder changes, so it counts as incomplete until the manifest is back
        (self.folder / _MANIFEST).unlink(missing_ok=True)
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
        save_npy(self.folder / "grades.npy", self.grades)
        save_npy(self.folder / "study_views.npy", self.study_views)
        write_atomic(self.folder / _MANIFEST, (self.manifest.model_dump_json(indent=2) + "\n").encode())

    def _save_index(self, code: int, index: VectorIndex) -> None:
        from rag.index.store import manifest_for, save_index

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
