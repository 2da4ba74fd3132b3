"""Prometheus metrics in the text exposition format: requests by route and status, and latency.

Each worker process counts its own requests, and every sample carries the worker's ``pid`` label: with
``rag-api --workers N`` a scrape reaches one worker, and the label keeps the workers' counters apart
(one series each, never one counter that seems to reset); ``sum without (pid)`` adds them up.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict

__all__ = ["Metrics"]

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Counts and latency histograms per route template (``/cases/{study_id}``, not per study)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.hist: dict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self.sums: dict[str, float] = defaultdict(float)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            counts = self.hist[route]
            for i, edge in enumerate(BUCKETS):
                if seconds <= edge:
                    counts[i] += 1
            counts[-1] += 1
            self.sums[route] += seconds

    def text(self) -> str:
        pid = f'pid="{os.getpid()}"'
        out = [
            "# HELP rag_api_requests_total Requests answered, by method, route and status.",
            "# TYPE rag_api_requests_total counter",
        ]
        with self._lock:
            for (method, route, status), n in sorted(self.requests.items()):
                out.append(f'rag_api_requests_total{{method="{method}",route="{route}",status="{status}",{pid}}} {n}')
            out += [
                "# HELP rag_api_request_seconds Request latency, by route.",
                "# TYPE rag_api_request_seconds histogram",
            ]
            for route, counts in sorted(self.hist.items()):
                for edge, n in zip((*BUCKETS, "+Inf"), counts, strict=True):
                    out.append(f'rag_api_request_seconds_bucket{{route="{route}",le="{edge}",{pid}}} {n}')
                out.append(f'rag_api_request_seconds_sum{{route="{route}",{pid}}} {self.sums[route]:.6f}')
                out.append(f'rag_api_request_seconds_count{{route="{route}",{pid}}} {counts[-1]}')
        return "\n".join(out) + "\n"
