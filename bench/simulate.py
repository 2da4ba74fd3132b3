"""Simulator throughput: clips per second written as real DICOM (and MP4, reports, truth tables).

    python bench/simulate.py [--patients 4] [--workers 2]

Prints clips/s in one process and with --workers processes side by side, the archive's size on disk,
and a machine-readable last line.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path


def run(patients: int, workers: int, seed: int) -> tuple[float, int, int, float]:
    from rag.simulate.archive import simulate_archive

    out = Path(tempfile.mkdtemp(prefix="rag-bench-sim-"))
    try:
        t0 = time.perf_counter()
        summary = simulate_archive(out / "a", patients=patients, seed=seed, workers=workers)
        elapsed = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return elapsed, summary.clips + summary.stills, summary.studies, size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", type=int, default=4)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"{'workers':>8} {'seconds':>8} {'studies':>8} {'clips':>6} {'clips/s':>8} {'s/clip':>7} {'MB':>7}")
    rates = {}
    for w in sorted({1, args.workers}):
        elapsed, clips, studies, size = run(args.patients, w, args.seed)
        rates[w] = clips / elapsed
        print(
            f"{w:>8} {elapsed:>8.1f} {studies:>8} {clips:>6} {clips / elapsed:>8.2f} "
            f"{elapsed / clips:>7.2f} {size:>7.1f}"
        )
    per_patient_mb = size / args.patients
    print(f"disk: {per_patient_mb:.1f} MB per patient -> about {per_patient_mb * 200 / 1000:.1f} GB for 200 patients")
    best = max(rates)
    print(
        f"clips_per_s={rates[1]:.2f} parallel_clips_per_s={rates[best]:.2f} workers={best} "
        f"mb_per_patient={per_patient_mb:.1f}"
    )


if __name__ == "__main__":
    main()
