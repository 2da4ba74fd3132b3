"""The ingestion report: one line per source item, with counts, written as JSON per run."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from rag.core.clipfile import write_atomic

Status = Literal["ingested", "duplicate", "skipped"]


@dataclass(frozen=True)
class ItemOutcome:
    """What happened to one source file."""

    path: str
    kind: str
    status: Status
    reason: str | None = None
    record: str | None = None  # e.g. "clip:12", "image:3", "report:7"


@dataclass
class IngestReport:
    """Outcomes of one ingestion run."""

    started_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"))
    finished_at: str | None = None
    interrupted: bool = False
    items: list[ItemOutcome] = field(default_factory=list)
    swept_orphans: int = 0

    def add(self, outcome: ItemOutcome) -> None:
        self.items.append(outcome)

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(i.status for i in self.items)
        return {s: c.get(s, 0) for s in ("ingested", "skipped", "duplicate")}

    def by_status(self, status: Status) -> list[ItemOutcome]:
        return [i for i in self.items if i.status == status]

    def summary(self) -> str:
        """One line: counts of ingested, skipped and duplicate items."""
        c = self.counts
        tail = " (interrupted)" if self.interrupted else ""
        return f"ingested={c['ingested']} skipped={c['skipped']} duplicate={c['duplicate']}{tail}"

    def to_json(self) -> str:
        return json.dumps(
            {
                "started_at": self.started_at,
                "finished_at": self.finished_at,
                "interrupted": self.interrupted,
                "counts": self.counts,
                "swept_orphans": self.swept_orphans,
                "items": [asdict(i) for i in self.items],
            },
            indent=2,
        )

    def write(self, folder: Path) -> Path:
        """Write the report as ``<folder>/ingest-<start time, UTC, microseconds>.json``; returns its path."""
        stamp = dt.datetime.fromisoformat(self.started_at).strftime("%Y%m%dT%H%M%S.%fZ")
        path = folder / f"ingest-{stamp}.json"
        write_atomic(path, self.to_json().encode())
        return path
