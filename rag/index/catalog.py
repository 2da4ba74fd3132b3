"""What retrieval needs to know about the stored cases, as sorted arrays read from the store once.

The catalog holds IDs, pseudonyms, (shifted) study dates, which clip belongs to which study with its
declared view, which report section belongs to which study, and the stored measurements. It never
holds report text: texts are read from the store for the hits only (:meth:`Catalog.texts`).

Everything is a sorted NumPy array, so a catalog of a million report sections opens in milliseconds
from the files :meth:`Catalog.save` writes (memory-mapped), and lookups are binary searches. The
dictionary-like views (:attr:`Catalog.studies`, :attr:`Catalog.measurements`, ...) build one entry
when it is asked for.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import select

from rag.core.arrays import find, lookup
from rag.core.clipfile import write_atomic
from rag.core.errors import UnknownStudyError, VectorIndexError
from rag.store import Clip, Measurement, Patient, Report, ReportSection, Series, Store, Study
from rag.vocab.sections import ECHO_SECTIONS
from rag.vocab.views import COARSE_VIEWS

__all__ = ["NO_DATE", "Catalog", "StudyInfo"]

log = logging.getLogger(__name__)

NO_DATE = np.iinfo(np.int64).min
"""The date ordinal of a study without a date."""

_ARRAYS = (
    "study_ids",
    "study_patient",
    "study_date",
    "clip_ids",
    "clip_study",
    "clip_view",
    "section_ids",
    "section_codes",
    "section_study",
    "meas_study",
    "meas_name",
    "meas_value",
)
_NAMES_FILE = "catalog.json"


@dataclass(frozen=True)
class StudyInfo:
    """One stored study: IDs, the patient's pseudonym and the (per-patient shifted) study date."""

    study_id: int
    patient_id: int
    patient_pseudonym: str
    study_date: dt.date | None


class _Studies(Mapping[int, StudyInfo]):
    def __init__(self, catalog: Catalog) -> None:
        self._c = catalog

    def __getitem__(self, study_id: int) -> StudyInfo:
        c = self._c
        row = find(c.study_ids, int(study_id))
        if row is None:
            raise KeyError(study_id)
        ordinal = int(c.study_date[row])
        patient = int(c.study_patient[row])
        return StudyInfo(
            int(study_id),
            patient,
            c.pseudonyms.get(patient, ""),
            None if ordinal == NO_DATE else dt.date.fromordinal(ordinal),
        )

    def __iter__(self) -> Iterator[int]:
        return (int(s) for s in self._c.study_ids)

    def __len__(self) -> int:
        return len(self._c.study_ids)

    def __contains__(self, study_id: object) -> bool:
        return isinstance(study_id, int | np.integer) and find(self._c.study_ids, int(study_id)) is not None


class _ByKey(Mapping[int, int]):
    """``keys[i] -> values[i]`` for ascending ``keys``; rows whose value is ``missing`` are absent."""

    def __init__(self, keys: np.ndarray, values: np.ndarray, missing: int | None = None) -> None:
        self._keys, self._values, self._missing = keys, values, missing

    def __getitem__(self, key: int) -> int:
        row = find(self._keys, int(key))
        if row is None or (self._missing is not None and int(self._values[row]) == self._missing):
            raise KeyError(key)
        return int(self._values[row])

    def __iter__(self) -> Iterator[int]:
        keep = self._keys if self._missing is None else self._keys[self._values != self._missing]
        return (int(k) for k in keep)

    def __len__(self) -> int:
        return len(self._keys) if self._missing is None else int((self._values != self._missing).sum())

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, int | np.integer):
            return False
        try:
            self[int(key)]
        except KeyError:
            return False
        return True


class _Views(Mapping[int, str]):
    def __init__(self, codes: _ByKey) -> None:
        self._codes = codes

    def __getitem__(self, clip_id: int) -> str:
        return COARSE_VIEWS[self._codes[clip_id]]

    def __iter__(self) -> Iterator[int]:
        return iter(self._codes)

    def __len__(self) -> int:
        return len(self._codes)


class _Measurements(Mapping[int, dict[str, float]]):
    def __init__(self, catalog: Catalog) -> None:
        self._c = catalog
        self._seen: dict[int, dict[str, float]] = {}

    def __getitem__(self, study_id: int) -> dict[str, float]:
        found = self._seen.get(int(study_id))
        if found is None:
            c = self._c
            a, b = np.searchsorted(c.meas_study, [int(study_id), int(study_id) + 1])
            if a == b:
                raise KeyError(study_id)
            names, values = c.meas_name[a:b].tolist(), c.meas_value[a:b].tolist()
            found = {c.measurement_names[n]: float(v) for n, v in zip(names, values, strict=True)}
            if len(self._seen) >= 4096:
                self._seen.clear()
            self._seen[int(study_id)] = found
        return dict(found)

    def __iter__(self) -> Iterator[int]:
        return (int(s) for s in np.unique(self._c.meas_study))

    def __len__(self) -> int:
        return len(np.unique(self._c.meas_study))


@dataclass
class Catalog:
    """Store metadata for filtering, votes and provenance, as sorted arrays.

    Attributes:
        study_ids / study_patient / study_date: (s,) int64, ascending study IDs, their patient row IDs and
            date ordinals (:data:`NO_DATE` when undated).
        pseudonyms: patient row ID -> pseudonym.
        clip_ids / clip_study / clip_view: (c,) ascending clip IDs, their study, and the index into
            ``COARSE_VIEWS`` of the view the source declared (-1 when it declared none).
        section_ids / section_codes / section_study: (n,) ascending IDs of the report sections of echo
            reports named one of ``ECHO_SECTIONS``, the index of that name, and their study.
        meas_study / meas_name / meas_value: (m,) measurements sorted by study: the study, the index into
            ``measurement_names``, the value (the mean when a study states one twice).
        measurement_names / measurement_units: names and units of the measurements.
    """

    study_ids: np.ndarray
    study_patient: np.ndarray
    study_date: np.ndarray
    pseudonyms: dict[int, str]
    clip_ids: np.ndarray
    clip_study: np.ndarray
    clip_view: np.ndarray
    section_ids: np.ndarray
    section_codes: np.ndarray
    section_study: np.ndarray
    meas_study: np.ndarray
    meas_name: np.ndarray
    meas_value: np.ndarray
    measurement_names: list[str]
    measurement_units: list[str]

    # -- dictionary-like views ------------------------------------------------------------------------

    def __post_init__(self) -> None:
        for name in _ARRAYS:  # plain arrays over the same (possibly memory-mapped) memory: fast scalar reads
            setattr(self, name, np.asarray(getattr(self, name)))
        self._studies = _Studies(self)
        self._measurements = _Measurements(self)

    @property
    def studies(self) -> Mapping[int, StudyInfo]:
        """Study ID -> :class:`StudyInfo`."""
        return self._studies

    @property
    def clip_of_study(self) -> Mapping[int, int]:
        """Clip ID -> study ID."""
        return _ByKey(self.clip_ids, self.clip_study)

    @property
    def declared_views(self) -> Mapping[int, str]:
        """Clip ID -> the view the source declared (clips that declared none are absent)."""
        return _Views(_ByKey(self.clip_ids, self.clip_view, missing=-1))

    @property
    def measurements(self) -> Mapping[int, dict[str, float]]:
        """Study ID -> {measurement name: value}."""
        return self._measurements

    @property
    def units(self) -> dict[str, str]:
        """Measurement name -> unit."""
        return dict(zip(self.measurement_names, self.measurement_units, strict=True))

    # -- reading the store ----------------------------------------------------------------------------

    @classmethod
    def load(cls, store: Store) -> Catalog:
        """Read the catalog from ``store`` (a handful of queries, no report text)."""
        code = {name: i for i, name in enumerate(ECHO_SECTIONS)}
        view_code = {name: i for i, name in enumerate(COARSE_VIEWS)}
        with store.session() as s:
            studies = s.execute(select(Study.id, Study.patient_id, Study.study_date).order_by(Study.id)).all()
            pseudonyms = {int(pid): str(p) for pid, p in s.execute(select(Patient.id, Patient.pseudonym))}
            clips = s.execute(
                select(Clip.id, Series.study_id, Clip.view_label)
                .join(Series, Series.id == Clip.series_id)
                .order_by(Clip.id)
            ).all()
            rows = s.execute(
                select(ReportSection.id, ReportSection.name, Report.study_id)
                .join(Report, Report.id == ReportSection.report_id)
                .where(Report.kind == "echo", ReportSection.name.in_(ECHO_SECTIONS))
                .order_by(ReportSection.id)
            ).all()
            sums: dict[tuple[int, str], list[float]] = {}
            units: dict[str, str] = {}
            for sid, name, value, unit in s.execute(
                select(Measurement.study_id, Measurement.name, Measurement.value, Measurement.unit)
            ):
                sums.setdefault((int(sid), str(name)), []).append(float(value))
                units.setdefault(str(name), str(unit))
        names = sorted(units)
        name_code = {n: i for i, n in enumerate(names)}
        keys = sorted(sums)
        catalog = cls(
            study_ids=np.array([r[0] for r in studies], dtype=np.int64),
            study_patient=np.array([r[1] for r in studies], dtype=np.int64),
            study_date=np.array([NO_DATE if r[2] is None else r[2].toordinal() for r in studies], dtype=np.int64),
            pseudonyms=pseudonyms,
            clip_ids=np.array([r[0] for r in clips], dtype=np.int64),
            clip_study=np.array([r[1] for r in clips], dtype=np.int64),
            clip_view=np.array([view_code.get(str(r[2]), -1) if r[2] else -1 for r in clips], dtype=np.int16),
            section_ids=np.array([r[0] for r in rows], dtype=np.int64),
            section_codes=np.array([code[r[1]] for r in rows], dtype=np.int16),
            section_study=np.array([r[2] for r in rows], dtype=np.int64),
            meas_study=np.array([k[0] for k in keys], dtype=np.int64),
            meas_name=np.array([name_code[k[1]] for k in keys], dtype=np.int16),
            meas_value=np.array([float(np.mean(sums[k])) for k in keys], dtype=np.float64),
            measurement_names=names,
            measurement_units=[units[n] for n in names],
        )
        log.debug(
            "catalog: %d studies, %d clips, %d report sections",
            len(catalog.study_ids),
            len(catalog.clip_ids),
            len(catalog.section_ids),
        )
        return catalog

    # -- files ----------------------------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        """Write the arrays as ``.npy`` files and the names as ``catalog.json`` into ``folder``, atomically each."""
        import io

        folder.mkdir(parents=True, exist_ok=True)
        for name in _ARRAYS:
            buf = io.BytesIO()
            np.save(buf, np.ascontiguousarray(getattr(self, name)), allow_pickle=False)
            write_atomic(folder / f"{name}.npy", buf.getvalue())
        names = {
            "pseudonyms": {str(k): v for k, v in self.pseudonyms.items()},
            "measurement_names": self.measurement_names,
            "measurement_units": self.measurement_units,
        }
        write_atomic(folder / _NAMES_FILE, json.dumps(names, sort_keys=True).encode("utf-8"))

    @classmethod
    def open(cls, folder: Path) -> Catalog:
        """Open what :meth:`save` wrote (arrays memory-mapped).

        Raises:
            VectorIndexError: a file is missing or unreadable.
        """
        try:
            arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False) for name in _ARRAYS}
            names = json.loads((folder / _NAMES_FILE).read_text())
        except (OSError, ValueError) as e:
            raise VectorIndexError(
                f"the catalog in {folder} cannot be read ({e}); rebuild the case library with `rag index library`"
            ) from e
        return cls(
            **arrays,
            pseudonyms={int(k): str(v) for k, v in names["pseudonyms"].items()},
            measurement_names=list(names["measurement_names"]),
            measurement_units=list(names["measurement_units"]),
        )

    # -- lookups --------------------------------------------------------------------------------------

    def study(self, study_id: int) -> StudyInfo:
        """The study's metadata.

        Raises:
            UnknownStudyError: no stored study has this ID.
        """
        try:
            return self.studies[int(study_id)]
        except KeyError:
            raise UnknownStudyError(
                f"study {study_id} is not in the case store ({len(self.study_ids)} studies stored); "
                "pass a Study row ID (see `rag store info`)"
            ) from None

    def infos(self, study_ids: np.ndarray) -> list[StudyInfo]:
        """:class:`StudyInfo` of each of ``study_ids`` (all stored), in one vectorised lookup."""
        ids = np.asarray(study_ids, dtype=np.int64)
        rows = np.searchsorted(self.study_ids, ids)
        patients = self.study_patient[rows].tolist()
        dates = self.study_date[rows].tolist()
        return [
            StudyInfo(s, p, self.pseudonyms.get(p, ""), None if d == NO_DATE else dt.date.fromordinal(d))
            for s, p, d in zip(ids.tolist(), patients, dates, strict=True)
        ]

    def patients_of(self, study_ids: np.ndarray) -> np.ndarray:
        """(n,) int64 patient row ID of each study (-1 for unknown studies)."""
        return self._lookup(study_ids, self.study_patient, -1)

    def date_ordinal(self, study_ids: np.ndarray) -> np.ndarray:
        """(n,) int64 proleptic ordinal of each study's date; :data:`NO_DATE` when unknown."""
        return self._lookup(study_ids, self.study_date, NO_DATE)

    def _lookup(self, study_ids: np.ndarray, values: np.ndarray, missing: int) -> np.ndarray:
        ids = np.asarray(study_ids, dtype=np.int64)
        out = np.full(len(ids), missing, dtype=np.int64)
        rows, found = lookup(self.study_ids, ids)
        out[found] = values[rows[found]]
        return out

    def has_date(self, ordinals: np.ndarray) -> np.ndarray:
        """(n,) bool: which ordinals of :meth:`date_ordinal` are real dates."""
        return np.asarray(ordinals != NO_DATE)

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
