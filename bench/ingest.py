"""Ingestion throughput: DICOM cine -> de-identified, masked, time-sampled, stored clip.

Writes N synthetic echo cines as real DICOM files (YBR_FULL_422 JPEG baseline, the encoding echo carts
export most; default 64 frames of 600x800 like the reference measurement in REFERENCES.md), then ingests
them into fresh workspaces with 1 worker process and with --workers, side by side, and prints files/s,
frames/s and the speed-up. The last line is machine-readable.

    python bench/ingest.py [--n 24] [--frames 64] [--height 600] [--width 800] [--workers 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def synthetic_frames(n_frames: int, height: int, width: int, seed: int) -> np.ndarray:
    """(T, H, W, 3) uint8: a speckled sector with a beating ring, an ECG strip and a text box."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    apex = (int(height * 0.08), width // 2)
    r = np.hypot(yy - apex[0], xx - apex[1])
    ang = np.arctan2(xx - apex[1], yy - apex[0])
    sector = (r < height * 0.8) & (np.abs(ang) < np.deg2rad(40))
    frames = np.zeros((n_frames, height, width, 3), np.uint8)
    centre = (height * 0.45, width / 2)
    for t in range(n_frames):
        phase = np.sin(2 * np.pi * t / 20)
        radius = height * (0.16 + 0.03 * phase)
        d = np.hypot(yy - centre[0], xx - centre[1])
        tissue = np.clip(np.abs(d - radius) < height * 0.04, 0, 1) * 170 + 30
        speckle = rng.gamma(2.0, 0.5, size=(height, width))
        img = np.where(sector, np.clip(tissue * speckle, 0, 255), 0).astype(np.uint8)
        frames[t, ..., :] = img[..., None]
        ecg_y = (height * 0.93 + 12 * np.sin(np.linspace(0, 12 * np.pi, width) + t)).astype(int)
        frames[t, ecg_y.clip(0, height - 1), np.arange(width), 1] = 255
        frames[t, 10:30, 10:150] = 200
    return frames


def write_cine(path: Path, frames: np.ndarray, index: int) -> None:
    """Write frames as an Ultrasound Multi-frame DICOM, JPEG baseline, YBR_FULL_422, 30 fps."""
    from pydicom.uid import generate_uid

    from rag.simulate.dicom_writer import StudyInfo, write_us_dicom

    study = StudyInfo(f"BENCH^PATIENT{index}", f"B{index:06d}", generate_uid(), dt.date(2024, 1, 1))
    write_us_dicom(
        path,
        frames,
        study=study,
        series_uid=generate_uid(),
        sop_uid=generate_uid(),
        frame_time_ms=33.3,
        encoding="jpeg",
        series_description="A4C",
    )


def run(src: Path, workers: int) -> tuple[float, int]:
    from rag.core.config import load_config
    from rag.ingest.pipeline import ingest

    home = Path(tempfile.mkdtemp(prefix="rag-bench-ws-"))
    try:
        cfg = load_config(home=home, pseudonym_key="bench-key-0000", ingest={"workers": workers})
        t0 = time.perf_counter()
        report = ingest([src], cfg)
        elapsed = time.perf_counter() - t0
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return elapsed, report.counts["ingested"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=24, help="cines to ingest")
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--height", type=int, default=600)
    ap.add_argument("--width", type=int, default=800)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()

    src = Path(tempfile.mkdtemp(prefix="rag-bench-src-"))
    try:
        base = synthetic_frames(args.frames, args.height, args.width, seed=0)
        t0 = time.perf_counter()
        for i in range(args.n):
            write_cine(src / f"cine{i:04d}.dcm", np.roll(base, i, axis=0), i)
        size_mb = sum(p.stat().st_size for p in src.iterdir()) / 1e6
        print(
            f"wrote {args.n} cines ({args.frames} x {args.height}x{args.width}, JPEG YBR_FULL_422, "
            f"{size_mb:.1f} MB) in {time.perf_counter() - t0:.1f} s"
        )
        print(f"{'workers':>8} {'seconds':>8} {'files/s':>8} {'frames/s':>9} {'ingested':>9}")
        results = {}
        for w in sorted({1, args.workers}):
            elapsed, n = run(src, w)
            results[w] = args.n / elapsed
            print(f"{w:>8} {elapsed:>8.2f} {args.n / elapsed:>8.2f} {args.n * args.frames / elapsed:>9.1f} {n:>9}")
        speedup = results[max(results)] / results[1]
        print(f"speed-up with {max(results)} workers: {speedup:.2f}x")
        print(
            f"single_files_per_s={results[1]:.2f} parallel_files_per_s={results[max(results)]:.2f} "
            f"workers={max(results)} speedup={speedup:.2f}"
        )
    finally:
        shutil.rmtree(src, ignore_errors=True)


if __name__ == "__main__":
    main()
