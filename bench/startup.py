"""Start-up times of the command line and the report parser, beside a bare Python start.

- ``python -c pass``: the floor every command pays;
- ``rag --help``: the command line (imports nothing heavy: numpy, torch, FAISS load inside commands);
- echo report parsing: reports/s of ``parse_echo_report`` over the simulated report styles.

Usage::

    python bench/startup.py [--repeat 5]

The last line is machine-readable.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def _seconds(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _parse_rate(seconds: float = 2.0) -> float:
    import numpy as np

    from rag.ingest.sections import parse_echo_report
    from rag.simulate.reports import write_report
    from rag.simulate.truth import simulate_patients

    rng = np.random.default_rng(0)
    texts = []
    for patient in simulate_patients(40, seed=0):
        prior = None
        for study in patient.studies:
            texts.append(write_report(patient, study, prior, rng).text)
            prior = study
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for text in texts:
            parse_echo_report(text)
        done += len(texts)
    return done / (time.perf_counter() - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    bare = _seconds([sys.executable, "-c", "pass"], args.repeat)
    help_s = _seconds([sys.executable, "-m", "rag", "--help"], args.repeat)
    rate = _parse_rate()
    print(f"{'what':28s} {'median':>10s}")
    print(f"{'python -c pass':28s} {bare:9.2f}s")
    print(f"{'rag --help':28s} {help_s:9.2f}s  ({help_s / bare:.1f}x a bare start; target < 5 s)")
    print(f"{'echo reports parsed':28s} {rate:9.0f}/s (target > 1000/s)")
    print(f"rag_help_s={help_s:.2f} bare_python_s={bare:.2f} parse_reports_per_s={rate:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
