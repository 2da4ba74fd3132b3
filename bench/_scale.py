"""A synthetic workspace at archive scale for the drafting benchmark: store, embeddings, case library.

``build_workspace(root, n_sections)`` writes ``root/ws`` with the default layout: an SQLite case store
of ``n_sections / 15`` studies (three per patient, months apart), each with 15 anatomical report
sections of graded text, an LVEF, two clips of random views; a ``rag embed``-format embeddings folder
of 512-d vectors (clustered per section, L2-normalised) for the clips and sections; a checkpoint file
whose sha256 the embeddings name; and the case library built from them with ``CaseLibrary.build``.
Built once; a second call finds ``ws/indexes/library/manifest.json`` and returns.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import time
from pathlib import Path

import numpy as np

DIM = 512
CLIPS_PER_STUDY = 2
_GRADE = ("No", "Mild", "Moderate", "Severe")


def _save(path: Path, arr: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    path.write_bytes(buf.getvalue())


def _section_texts() -> dict[str, list[str]]:
    """Per section, four texts (grade 0-3 of its findings) in words the grade reader understands."""
    from rag.vocab.findings import PHENOTYPES
    from rag.vocab.sections import ECHO_SECTIONS

    out: dict[str, list[str]] = {}
    for section in ECHO_SECTIONS:
        findings = [p for p in PHENOTYPES.values() if p.kind == "finding" and p.section == section]
        if not findings:
            out[section] = [f"{section} is normal."] * 4
            continue
        out[section] = [" ".join(f"{_GRADE[g]} {p.description}." for p in findings) for g in range(4)]
    return out


def _vectors(rng: np.random.Generator, n: int, centres: np.ndarray) -> np.ndarray:
    """``n`` unit vectors scattered around random rows of ``centres``."""
    pick = rng.integers(0, len(centres), n)
    x = centres[pick] + 0.35 * rng.standard_normal((n, DIM), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def build_workspace(root: Path, n_sections: int, *, seed: int = 0, log: bool = True) -> Path:
    """Write (once) and return the workspace folder ``root/ws``."""
    from sqlalchemy import insert

    from rag.core.config import load_config
    from rag.index.library import LIBRARY_DIR, CaseLibrary
    from rag.store import Clip, Measurement, Patient, Report, ReportSection, Series, Study, open_store
    from rag.vocab.sections import ECHO_SECTIONS
    from rag.vocab.views import COARSE_VIEWS

    home = root / "ws"
    if (home / "indexes" / LIBRARY_DIR / "manifest.json").is_file():
        return home
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    n_studies = -(-n_sections // len(ECHO_SECTIONS))
    home.mkdir(parents=True, exist_ok=True)
    cfg = load_config(home=home, pseudonym_key="bench-scale")
    store = open_store(cfg.db_url)
    texts = _section_texts()
    study_ids = np.arange(1, n_studies + 1, dtype=np.int64)
    patient_of = (study_ids - 1) // 3 + 1
    base = dt.date(2015, 1, 1).toordinal()
    dates = base + rng.integers(0, 3000, n_studies)
    grades = rng.choice(4, size=(n_studies, len(ECHO_SECTIONS)), p=(0.7, 0.15, 0.1, 0.05))
    n_clips = n_studies * CLIPS_PER_STUDY
    with store.session() as s:
        s.execute(insert(Patient), [{"id": int(p), "pseudonym": f"P{p:07d}"} for p in np.unique(patient_of)])
        s.execute(
            insert(Study),
            [
                {
                    "id": int(i),
                    "patient_id": int(patient_of[i - 1]),
                    "uid_hash": f"s{i}",
                    "study_date": dt.date.fromordinal(int(dates[i - 1])),
                }
                for i in study_ids
            ],
        )
        s.execute(insert(Series), [{"id": int(i), "study_id": int(i), "uid_hash": f"r{i}"} for i in study_ids])
        views = rng.integers(0, len(COARSE_VIEWS), n_clips)
        s.execute(
            insert(Clip),
            [
                {
                    "id": c + 1,
                    "series_id": c // CLIPS_PER_STUDY + 1,
                    "instance_uid_hash": f"c{c}",
                    "content_sha256": "0" * 64,
                    "source_sha256": "0" * 64,
                    "source_format": "dicom",
                    "view_label": COARSE_VIEWS[int(views[c])],
                    "view_source": "synthetic",
                    "source_frames": 16,
                    "source_height": 112,
                    "source_width": 112,
                    "fps": 30.0,
                    "timing_source": "synthetic",
                    "photometric": "MONOCHROME2",
                    "is_grayscale": True,
                    "mask_source": "synthetic",
                    "frames": 16,
                    "size": 112,
                    "path": f"media/clips/{c + 1}.npz",
                }
                for c in range(n_clips)
            ],
        )
        s.execute(
            insert(Report),
            [
                {"id": int(i), "study_id": int(i), "kind": "echo", "content_sha256": f"{i:064d}", "text": "synthetic"}
                for i in study_ids
            ],
        )
        for start in range(0, n_studies, 20_000):
            chunk = study_ids[start : start + 20_000]
            s.execute(
                insert(ReportSection),
                [
                    {
                        "id": int((i - 1) * len(ECHO_SECTIONS) + k + 1),
                        "report_id": int(i),
                        "name": section,
                        "text": texts[section][int(grades[i - 1, k])],
                        "position": k,
                    }
                    for i in chunk
                    for k, section in enumerate(ECHO_SECTIONS)
                    if (i - 1) * len(ECHO_SECTIONS) + k < n_sections
                ],
            )
        lvef = np.clip(rng.normal(58, 9, n_studies), 15, 75)
        s.execute(
            insert(Measurement),
            [
                {"study_id": int(i), "name": "lvef", "value": float(lvef[i - 1]), "unit": "%", "source": "report"}
                for i in study_ids
            ],
        )
    if log:
        print(
            f"store: {n_studies} studies, {n_sections} report sections, {n_clips} clips "
            f"({time.perf_counter() - t0:.0f} s)"
        )

    checkpoint = home / "checkpoints" / "last.pt"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.write_bytes(b"synthetic checkpoint for the drafting benchmark " + str(seed).encode())
    sha = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    folder = home / "embeddings" / f"echo-video-tiny@{sha[:12]}"
    folder.mkdir(parents=True, exist_ok=True)
    centres = rng.standard_normal((64, DIM)).astype(np.float32)
    section_ids = np.arange(1, n_sections + 1, dtype=np.int64)
    _save(folder / "sections.ids.npy", section_ids)
    _save(folder / "sections.vectors.npy", _vectors(rng, n_sections, centres))
    _save(folder / "clips.ids.npy", np.arange(1, n_clips + 1, dtype=np.int64))
    _save(folder / "clips.vectors.npy", _vectors(rng, n_clips, centres))
    probs = rng.dirichlet(np.full(len(COARSE_VIEWS), 0.3), n_clips).astype(np.float32)
    _save(folder / "clips.view_probs.npy", probs)
    manifest = {
        "encoder": "echo-video-tiny",
        "checkpoint_sha256": sha,
        "dim": DIM,
        "metric": "inner_product",
        "normalisation": "l2",
        "preprocessing": {},
        "view_classes": list(COARSE_VIEWS),
        "counts": {"clips": n_clips, "sections": n_sections},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    t1 = time.perf_counter()
    CaseLibrary.build(store, folder, cfg.indexes_dir / LIBRARY_DIR, progress=log)
    store.close()
    if log:
        print(f"case library built in {time.perf_counter() - t1:.0f} s")
    return home
