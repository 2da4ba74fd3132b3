"""A case store and an embeddings folder with hand-chosen vectors, for retrieval tests that need control.

:class:`FakeArchive` writes rows straight into a fresh SQLite store (patients, studies, one series
per study, clips with a declared view, one echo report per study with named sections, measurements)
and the matching ``clips.*`` / ``sections.*`` arrays plus a manifest, as ``rag embed`` would.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.store import Clip, Measurement, Patient, Report, ReportSection, Series, Store, Study, open_store
from rag.vocab.views import COARSE_VIEWS


def unit(v: np.ndarray | list[float]) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    return (a / np.linalg.norm(a)).astype(np.float32)


def onehot(view: str) -> np.ndarray:
    p = np.zeros(len(COARSE_VIEWS), np.float32)
    p[COARSE_VIEWS.index(view)] = 1.0
    return p


@dataclass
class _Clip:
    view: str
    vector: np.ndarray
    probs: np.ndarray


@dataclass
class _Study:
    key: str
    patient: str
    date: dt.date | None
    clips: list[_Clip] = field(default_factory=list)
    sections: dict[str, tuple[str, np.ndarray]] = field(default_factory=dict)
    measurements: dict[str, float] = field(default_factory=dict)


class FakeArchive:
    """Collects studies, then :meth:`build` writes the store and the embeddings folder."""

    def __init__(self, root: Path, dim: int = 8) -> None:
        self.root = root
        self.dim = dim
        self.studies: dict[str, _Study] = {}
        self.study_ids: dict[str, int] = {}
        self.section_ids: dict[tuple[str, str], int] = {}
        self.patient_ids: dict[str, int] = {}
        self.store: Store | None = None
        self.folder = root / "embeddings" / "fake@000000000000"

    def study(self, key: str, patient: str, date: dt.date | None = dt.date(2020, 1, 1)) -> FakeArchive:
        self.studies[key] = _Study(key, patient, date)
        return self

    def clip(self, key: str, view: str, vector: np.ndarray, probs: np.ndarray | None = None) -> FakeArchive:
        self.studies[key].clips.append(_Clip(view, unit(vector), onehot(view) if probs is None else probs))
        return self

    def section(self, key: str, name: str, text: str, vector: np.ndarray) -> FakeArchive:
        self.studies[key].sections[name] = (text, unit(vector))
        return self

    def measure(self, key: str, name: str, value: float) -> FakeArchive:
        self.studies[key].measurements[name] = value
        return self

    def build(self) -> Store:
        store = open_store(f"sqlite:///{self.root / 'rag.sqlite3'}")
        clip_ids, clip_vecs, clip_probs, sec_ids, sec_vecs = [], [], [], [], []
        with store.session() as s:
            patients: dict[str, Patient] = {}
            for n, st in enumerate(self.studies.values()):
                if st.patient not in patients:
                    patients[st.patient] = Patient(pseudonym=f"P-{st.patient}")
                    s.add(patients[st.patient])
                study = Study(patient=patients[st.patient], uid_hash=f"study-{st.key}", study_date=st.date)
                series = Series(study=study, uid_hash=f"series-{st.key}")
                clips = []
                for i, c in enumerate(st.clips):
                    clip = Clip(
                        series=series,
                        instance_uid_hash=f"clip-{st.key}-{i}",
                        content_sha256=f"{n:032d}{i:032d}",
                        source_sha256=f"{n:032d}{i:032d}",
                        source_format="dicom",
                        view_label=c.view,
                        view_source="test",
                        source_frames=16,
                        source_height=64,
                        source_width=64,
                        fps=30.0,
                        timing_source="test",
                        photometric="RGB",
                        is_grayscale=False,
                        mask_source="test",
                        frames=16,
                        looped_frames=0,
                        size=1,
                        path=f"clips/{st.key}-{i}.npz",
                    )
                    clips.append((clip, c))
                report = Report(study=study, kind="echo", content_sha256=f"report-{st.key}", text="")
                sections = []
                for pos, (name, (text, vec)) in enumerate(st.sections.items()):
                    section = ReportSection(report=report, name=name, text=text, position=pos)
                    sections.append((name, section, vec))
                for name, value in st.measurements.items():
                    s.add(Measurement(study=study, name=name, value=value, unit="", source="report"))
                s.add(study)
                s.flush()
                self.study_ids[st.key] = study.id
                self.patient_ids[st.patient] = patients[st.patient].id
                for clip, c in clips:
                    clip_ids.append(clip.id)
                    clip_vecs.append(c.vector)
                    clip_probs.append(c.probs)
                for name, section, vec in sections:
                    self.section_ids[(st.key, name)] = section.id
                    sec_ids.append(section.id)
                    sec_vecs.append(vec)
        self.folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {
            "clips.ids": np.array(clip_ids, np.int64),
            "clips.vectors": np.array(clip_vecs, np.float32).reshape(-1, self.dim),
            "clips.view_probs": np.array(clip_probs, np.float32).reshape(-1, len(COARSE_VIEWS)),
            "sections.ids": np.array(sec_ids, np.int64),
            "sections.vectors": np.array(sec_vecs, np.float32).reshape(-1, self.dim),
        }
        for name, arr in arrays.items():
            np.save(self.folder / f"{name}.npy", arr)
        manifest = {
            "encoder": "fake",
            "checkpoint_sha256": "0" * 64,
            "dim": self.dim,
            "view_classes": list(COARSE_VIEWS),
        }
        (self.folder / "manifest.json").write_text(json.dumps(manifest))
        self.store = store
        return store
