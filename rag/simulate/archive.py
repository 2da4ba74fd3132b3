"""Writing a simulated echo archive: DICOM cines and stills, MP4 exports, reports, ground-truth tables.

Layout of ``out``::

    patients/<patient id>/<study date>_<k>/   one folder per study (a PACS export)
        IM_<nnnn>.dcm                          cines and stills, one file per instance
        export_<view>.mp4                      a few clips exported as video
        report.txt                             the study's report (names the patient: de-identify!)
    truth/clips.csv                            one row per written clip or still
    truth/studies.csv                          one row per study: every finding, changes since the prior
    truth/README.md                            what the columns mean

Deterministic for a seed: the same seed writes byte-identical files, whatever the number of workers.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.simulate.dicom_writer import Encoding, Region, StudyInfo, write_us_dicom
from rag.simulate.truth import PatientTruth, StudyTruth, changes, simulate_patients

REQUIRED_VIEWS: tuple[str, ...] = (
    "A4C",
    "A2C",
    "A3C",
    "A5C",
    "Parasternal_Long",
    "Parasternal_Short",
    "Subcostal",
    "SSN",
)
DOPPLER_VIEWS: tuple[str, ...] = ("Apical_Doppler", "Doppler_Parasternal_Long", "Doppler_Parasternal_Short")

# How echo carts label views in Series Description (varied, as in practice); "" = no label written.
VIEW_LABELS: dict[str, tuple[str, ...]] = {
    "A4C": ("A4C", "Apical 4 chamber", "AP4", ""),
    "A2C": ("A2C", "Apical 2 chamber", "AP2", ""),
    "A3C": ("A3C", "APLAX", "Apical 3 chamber", ""),
    "A5C": ("A5C", "Apical 5 chamber", "AP5", ""),
    "Apical_Doppler": ("A4C color MR", "AP4 colour TR", "Apical 4 CFM", ""),
    "Parasternal_Long": ("PLAX", "PS LAX", "Parasternal long axis", ""),
    "Doppler_Parasternal_Long": ("PLAX color MR", "PS LAX MR & AI", "PLAX CFM", ""),
    "Parasternal_Short": ("PSAX", "PSAX mid", "Parasternal short axis", ""),
    "Doppler_Parasternal_Short": ("PSAX AV color", "PSAX colour AV level", "PS SAX CFM", ""),
    "Subcostal": ("Subcostal", "Subcostal IVC", "SC 4 chamber", ""),
    "SSN": ("SSN", "Suprasternal arch", "SSN aortic arch", ""),
}

CLIP_COLUMNS = (
    "path",
    "kind",
    "patient_id",
    "study_uid",
    "series_uid",
    "sop_uid",
    "study_index",
    "view",
    "label",
    "encoding",
    "grayscale",
    "colour",
    "fps",
    "n_frames",
    "height",
    "width",
)


@dataclass(frozen=True)
class SimulationOptions:
    """What to write for each study."""

    height: int = 300
    width: int = 400
    jpeg_quality: int = 85
    doppler_probability: float = 0.8  # each Doppler view is written with this probability
    still_count: int = 1
    mp4_probability: float = 0.15  # a study also exports one clip as MP4
    grayscale_probability: float = 0.5  # a B-mode clip is a true grayscale DICOM


@dataclass
class ArchiveSummary:
    out: Path
    patients: int = 0
    studies: int = 0
    clips: int = 0
    stills: int = 0
    videos: int = 0
    reports: int = 0
    seconds: float = 0.0
    clip_rows: list[dict[str, Any]] = field(default_factory=list)


def derived_uid(*parts: object) -> str:
    """A deterministic DICOM UID (``2.25.<int>``) from ``parts``."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


def _rng(seed: int, *parts: object) -> np.random.Generator:
    """An independent generator per (seed, parts): results do not depend on the order of work."""
    key = hashlib.sha256("/".join([str(seed), *map(str, parts)]).encode()).digest()
    return np.random.default_rng(int.from_bytes(key[:8], "big"))


def _encoding(rng: np.random.Generator, *, grayscale: bool) -> Encoding:
    """JPEG baseline mostly (as carts export); some lossless RLE and uncompressed grayscale cines.

    Lossless colour cines are left out: at ~7-20 MB each they would dominate the archive's size.
    """
    u = rng.random()
    if not grayscale or u < 0.88:
        return "jpeg"
    return "rle" if u < 0.97 else "raw"


def study_folder(patient: PatientTruth, study: StudyTruth) -> Path:
    return Path("patients") / patient.patient_id / f"{study.date:%Y%m%d}_{study.study_index + 1}"


def _write_mp4(path: Path, frames: np.ndarray, fps: float) -> None:
    """Write (T, H, W[, 3]) uint8 frames as an MPEG-4 Part 2 MP4.

    FFmpeg's own MPEG-4 encoder, single-threaded with the bit-exact flags, writes the same bytes on
    every run (libx264 did not, from run to run, even single-threaded).
    """
    import fractions

    import av
    from av.codec.context import Flags

    rgb = frames if frames.ndim == 4 else np.repeat(frames[..., None], 3, axis=-1)
    h, w = rgb.shape[1:3]
    with av.open(str(path), mode="w", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("mpeg4", rate=fractions.Fraction(round(fps * 1000), 1000))
        stream.width, stream.height = w - w % 2, h - h % 2
        stream.pix_fmt = "yuv420p"
        stream.options = {"threads": "1", "qscale": "3"}
        stream.codec_context.thread_count = 1
        stream.codec_context.flags |= Flags.bitexact
        for f in rgb:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(f[: h - h % 2, : w - w % 2]), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _study_job(args: tuple[Path, PatientTruth, int, int, SimulationOptions]) -> list[dict[str, Any]]:
    """Write every file of one study; returns its clip rows. Runs in a worker process."""
    from rag.simulate.render import render_clip
    from rag.simulate.reports import write_report

    out, patient, k, seed, opts = args
    study = patient.studies[k]
    prior = patient.studies[k - 1] if k > 0 else None
    rng = _rng(seed, patient.index, k)
    folder = out / study_folder(patient, study)
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = derived_uid(seed, patient.patient_id, k, "study")
    info = StudyInfo(
        patient_name=patient.name,
        patient_id=patient.patient_id,
        study_uid=study_uid,
        study_date=study.date,
        birth_date=patient.birth_date,
        sex=patient.sex,
        institution="St. Simulated General Hospital",
        accession=f"ACC{int(rng.integers(10**7, 10**8))}",
    )
    views = list(REQUIRED_VIEWS) + [v for v in DOPPLER_VIEWS if rng.random() < opts.doppler_probability]
    rows: list[dict[str, Any]] = []
    mp4_view = str(rng.choice(views)) if rng.random() < opts.mp4_probability else None
    for n, view in enumerate(views, start=1):
        doppler = view in DOPPLER_VIEWS
        grayscale = False if doppler else bool(rng.random() < opts.grayscale_probability)
        clip = render_clip(study, view, rng=rng, height=opts.height, width=opts.width, grayscale=grayscale)
        label = str(rng.choice(VIEW_LABELS[view]))
        encoding = _encoding(rng, grayscale=clip.frames.ndim == 3)
        series_uid = derived_uid(seed, patient.patient_id, k, "series", n)
        sop_uid = derived_uid(seed, patient.patient_id, k, "sop", n)
        x0, y0, x1, y1 = clip.sector_box
        name = f"IM_{n:04d}.dcm"
        write_us_dicom(
            folder / name,
            clip.frames,
            study=info,
            series_uid=series_uid,
            sop_uid=sop_uid,
            frame_time_ms=1000.0 / clip.fps,
            encoding=encoding,
            series_description=label,
            regions=(Region(x0, y0, x1, y1, data_type=2 if clip.colour and doppler else 1),),
            instance_number=n,
        )
        rows.append(
            _row(
                folder / name,
                out,
                "cine",
                patient,
                study,
                study_uid,
                series_uid,
                sop_uid,
                view,
                label,
                encoding,
                clip.frames,
                clip.fps,
                clip.colour,
            )
        )
        if view == mp4_view:
            mp4 = folder / f"export_{view}.mp4"
            _write_mp4(mp4, clip.frames, clip.fps)
            rows.append(
                _row(
                    mp4,
                    out,
                    "video",
                    patient,
                    study,
                    study_uid,
                    "",
                    "",
                    view,
                    "",
                    "mpeg4",
                    clip.frames,
                    clip.fps,
                    clip.colour,
                )
            )
    for s in range(opts.still_count):
        view = str(rng.choice(REQUIRED_VIEWS))
        clip = render_clip(study, view, rng=rng, height=opts.height, width=opts.width, n_frames=1, grayscale=False)
        n = len(views) + s + 1
        series_uid = derived_uid(seed, patient.patient_id, k, "series", n)
        sop_uid = derived_uid(seed, patient.patient_id, k, "sop", n)
        name = f"IM_{n:04d}.dcm"
        label = str(rng.choice(VIEW_LABELS[view]))
        write_us_dicom(
            folder / name,
            clip.frames,
            study=info,
            series_uid=series_uid,
            sop_uid=sop_uid,
            encoding="jpeg",
            series_description=label,
            instance_number=n,
        )
        rows.append(
            _row(
                folder / name,
                out,
                "still",
                patient,
                study,
                study_uid,
                series_uid,
                sop_uid,
                view,
                label,
                "jpeg",
                clip.frames,
                None,
                clip.colour,
            )
        )
    report = write_report(patient, study, prior, rng)
    (folder / "report.txt").write_text(report.text, encoding="utf-8")
    return rows


def _row(
    path: Path,
    out: Path,
    kind: str,
    patient: PatientTruth,
    study: StudyTruth,
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    view: str,
    label: str,
    encoding: str,
    frames: np.ndarray,
    fps: float | None,
    colour: bool,
) -> dict[str, Any]:
    return {
        "path": str(path.relative_to(out)),
        "kind": kind,
        "patient_id": patient.patient_id,
        "study_uid": study_uid,
        "series_uid": series_uid,
        "sop_uid": sop_uid,
        "study_index": study.study_index,
        "view": view,
        "label": label,
        "encoding": encoding,
        "grayscale": frames.ndim == 3,
        "colour": colour,
        "fps": round(fps, 3) if fps else "",
        "n_frames": int(frames.shape[0]),
        "height": int(frames.shape[1]),
        "width": int(frames.shape[2]),
    }


def _study_rows(patients: list[PatientTruth], seed: int) -> Iterator[dict[str, Any]]:
    for p in patients:
        for k, s in enumerate(p.studies):
            prior = p.studies[k - 1] if k else None
            delta = changes(prior, s) if prior else {}
            yield {
                "patient_id": p.patient_id,
                "study_uid": derived_uid(seed, p.patient_id, k, "study"),
                "course": str(p.course),
                "sex": p.sex,
                "n_studies": len(p.studies),
                **s.as_row(),
                "prior_study_uid": derived_uid(seed, p.patient_id, k - 1, "study") if k else "",
                "changes": "; ".join(f"{k2}: {v}" for k2, v in delta.items()),
            }


def _write_csv(path: Path, rows: list[dict[str, Any]], columns: tuple[str, ...] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = list(columns or (rows[0].keys() if rows else ()))
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=cols, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def simulate_archive(
    out: Path,
    *,
    patients: int,
    seed: int = 0,
    workers: int = 1,
    options: SimulationOptions | None = None,
    progress: Callable[[int], None] | None = None,
) -> ArchiveSummary:
    """Write a simulated archive of ``patients`` patients under ``out`` (see the module docstring)."""
    import time

    opts = options or SimulationOptions()
    t0 = time.perf_counter()
    truth = simulate_patients(patients, seed=seed)
    jobs = [(out, p, k, seed, opts) for p in truth for k in range(len(p.studies))]
    summary = ArchiveSummary(out=out, patients=len(truth), studies=len(jobs))
    results: list[list[dict[str, Any]]] = []
    if workers <= 1:
        for job in jobs:
            results.append(_study_job(job))
            if progress:
                progress(1)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for rows in pool.map(_study_job, jobs):
                results.append(rows)
                if progress:
                    progress(1)
    clip_rows = [r for rows in results for r in rows]
    _write_csv(out / "truth" / "clips.csv", clip_rows, CLIP_COLUMNS)
    _write_csv(out / "truth" / "studies.csv", list(_study_rows(truth, seed)))
    (out / "truth" / "README.md").write_text(_TRUTH_README, encoding="utf-8")
    summary.clip_rows = clip_rows
    summary.clips = sum(r["kind"] == "cine" for r in clip_rows)
    summary.stills = sum(r["kind"] == "still" for r in clip_rows)
    summary.videos = sum(r["kind"] == "video" for r in clip_rows)
    summary.reports = len(jobs)
    summary.seconds = time.perf_counter() - t0
    return summary


def read_truth(out: Path) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The ground-truth tables of an archive: (clip rows, study rows), as strings."""
    with (out / "truth" / "clips.csv").open(encoding="utf-8") as f:
        clips = list(csv.DictReader(f))
    with (out / "truth" / "studies.csv").open(encoding="utf-8") as f:
        studies = list(csv.DictReader(f))
    return clips, studies


_TRUTH_README = """# Ground truth of this simulated archive

`clips.csv`: one row per written cine (`kind=cine`), still (`still`) or MP4 export (`video`):
its path under the archive, patient ID, Study/Series/SOP Instance UIDs (as written in the files),
study index (0 = the patient's first study), true view (one of the 11 coarse echo views), the label
written in Series Description ("" = none), encoding, grayscale, colour Doppler, frame rate, frame count
and size.

`studies.csv`: one row per study: patient ID, Study Instance UID, course of the patient, and every
finding of the study: LVEF (%), LV end-diastolic and end-systolic diameters (cm), wall thickness (cm),
grades 0-3 (none, mild, moderate, severe; effusion: none, small, moderate, large) of RV dilation,
LA/RA dilation, effusion, mitral / aortic / tricuspid regurgitation and aortic stenosis, flags for
RV dysfunction, aortic valve thickening, IVC dilation and collapse, PASP (mmHg), wall motion, heart
rate, the prior study's UID and the changes since it.
"""


def write_preview(path: Path, *, seed: int = 0, options: SimulationOptions | None = None) -> Path:
    """A PNG contact sheet: one frame of every view of a simulated study, and LV area over time."""
    from rag.simulate.preview import contact_sheet
    from rag.simulate.render import render_clip

    opts = options or SimulationOptions()
    patient = simulate_patients(1, seed=seed)[0]
    rng = _rng(seed, "preview")
    clips = [
        render_clip(patient.studies[0], view, rng=rng, height=opts.height, width=opts.width)
        for view in (*REQUIRED_VIEWS, *DOPPLER_VIEWS)
    ]
    return contact_sheet(clips, path)
