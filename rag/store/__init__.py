"""The case store: pseudonymised patients, studies, series, clips, stills, reports, measurements."""

from __future__ import annotations

from rag.store.db import Store, make_engine, migrate, open_store
from rag.store.models import (
    ApiKey,
    AuditEntry,
    Base,
    Clip,
    Measurement,
    Patient,
    Report,
    ReportSection,
    Series,
    StillImage,
    Study,
)

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Base",
    "Clip",
    "Measurement",
    "Patient",
    "Report",
    "ReportSection",
    "Series",
    "StillImage",
    "Store",
    "Study",
    "make_engine",
    "migrate",
    "open_store",
]
