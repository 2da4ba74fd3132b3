"""What retrieval needs to know about the stored cases, read from the case store once.

The catalog holds IDs, pseudonyms, (shifted) study dates, which clip belongs to which study with its
declared view, which report section belongs to which study, and the stored measurements. It never
holds report text: texts are read from the store for the hits only (:meth:`Catalog.texts`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select

from rag.ingest.sections import ECHO_SECTIONS
from rag.store import Clip, Measurement, Patient, Report, ReportSection, Series, Store, Study

__all__ = ["Catalog", "StudyInfo"]

log = logging.getLogger(__name__)

_NO_DATE = np.iinfo(np.int64).min


@dataclass(frozen=True)
class StudyInfo:
    """One stored study: IDs, the patient's pseudonym and the (per-patient shifted) study date."""

    study_id: int
    patient_id: int
    patient_pseudonym: str
    study_date: dt.date | None


@dataclass
class Catalog:
    """Store metadata for filtering and provenance.

    Attributes:
        studies: study ID -> :class:`StudyInfo`.
        clip_study: clip ID -> study ID.
        clip_view: clip ID -> the view the source declared (a ``COARSE_VIEWS`` name), when it declared one.
        section_ids: (n,) int64 IDs of the report sections of echo reports named one of ``ECHO_SECTIONS``.
        section_codes: (n,) int16 index into ``ECHO_SECTIONS`` of each of them.
        section_study: (n,) int64 study ID of each of them.
        measurements: study ID -> {measurement name: value} (the mean when a study states one twice).
        units: measurement name -> unit.
    """

    studies: dict[int, StudyInfo]
    clip_study: dict[int, int]
    clip_view: dict[int, str]
    section_ids: np.ndarray
    section_codes: np.ndarray
    section_study: np.ndarray
    measurements: dict[int, dict[str, float]] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, store: Store) -> Catalog:
        """Read the catalog from ``store`` (a handful of queries, no report text)."""
        code = {name: i for i, name in enumerate(ECHO_SECTIONS)}
        with store.session() as s:
            studies = {
                int(sid): StudyInfo(int(sid), int(pid), str(pseudonym), date)
                for sid, pid, pseudonym, date in s.execute(
                    select(Study.id, Study.patient_id, Patient.pseudonym, Study.study_date).join(
                        Patient, Patient.id == Study.patient_id
                    )
                )
            }
            clip_study: dict[int, int] = {}
            clip_view: dict[int, str] = {}
            for cid, sid, view in s.execute(
                select(Clip.id, Series.study_id, Clip.view_label).join(Series, Series.id == Clip.series_id)
            ):
                clip_study[int(cid)] = int(sid)
                if view:
                    clip_view[int(cid)] = str(view)
            rows = s.execute(
                select(ReportSection.id, ReportSection.name, Report.study_id)
                .join(Report, Report.id == ReportSection.report_id)
                .where(Report.kind == "echo", ReportSection.name.in_(ECHO_SECTIONS))
                .order_by(ReportSection.id)
            ).all()
            sums: dict[int, dict[str, list[float]]] = {}
            units: dict[str, str] = {}
            for sid, name, value, unit in s.execute(
                select(Measurement.study_id, Measurement.name, Measurement.value, Measurement.unit)
            ):
                sums.setdefault(int(sid), {}).setdefault(str(name), []).append(float(value))
                units.setdefault(str(name), str(unit))
        measurements = {sid: {n: float(np.mean(v)) for n, v in named.items()} for sid, named in sums.items()}
        catalog = cls(
            studies=studies,
            clip_study=clip_study,
            clip_view=clip_view,
            section_ids=np.array([r[0] for r in rows], dtype=np.int64),
            section_codes=np.array([code[r[1]] for r in rows], dtype=np.int16),
            section_study=np.array([r[2] for r in rows], dtype=np.int64),
            measurements=measurements,
            units=units,
        )
        log.debug(
            "catalog: %d studies, %d clips, %d report sections", len(studies), len(clip_study), len(catalog.section_ids)
        )
        return catalog

    def study(self, study_id: int) -> StudyInfo:
        """The study's metadata.

        Raises:
            UnknownStudyError: no stored study has this ID.
        """
        from rag.errors import UnknownStudyError

        info = self.studies.get(int(study_id))
        if info is None:
            raise UnknownStudyError(
                f"study {study_id} is not in the case store ({len(self.studies)} studies stored); "
                "pass a Study row ID (see `rag store info`)"
            )
        return info

    def date_ordinal(self, study_ids: np.ndarray) -> np.ndarray:
        """(n,) int64 proleptic ordinal of each study's date; a very negative sentinel when unknown."""
        out = np.full(len(study_ids), _NO_DATE, dtype=np.int64)
        for n, study_id in enumerate(study_ids):
            info = self.studies.get(int(study_id))
            if info is not None and info.study_date is not None:
                out[n] = info.study_date.toordinal()
        return out

    def has_date(self, ordinals: np.ndarray) -> np.ndarray:
        """(n,) bool: which ordinals of :meth:`date_ordinal` are real dates."""
        return np.asarray(ordinals != _NO_DATE)

    @staticmethod
    def texts(store: Store, section_ids: Iterable[int]) -> dict[int, str]:
        """Report section ID -> text, for the given IDs only."""
        wanted = sorted({int(i) for i in section_ids})
        out: dict[int, str] = {}
        with store.session() as s:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                for sid, text in s.execute(
                    select(ReportSection.id, ReportSection.text).where(ReportSection.id.in_(chunk))
                ):
                    out[int(sid)] = str(text)
        return out
