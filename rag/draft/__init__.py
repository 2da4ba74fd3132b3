"""Report drafting: retrieved cases and votes in, a report with per-sentence provenance out.

::

    from rag.draft import Drafter
    from rag.render import render_markdown

    drafter = Drafter()                      # the workspace's checkpoint, embeddings, KB
    report = drafter.draft(42)               # or a folder of DICOMs, ingested on the fly
    print(render_markdown(report))
    report.measurement("lvef").value, report.sections[0].sentences[0].evidence

Generators: :class:`ExtractiveGenerator` (default, no server) and :class:`OpenAIGenerator` (any
OpenAI-compatible endpoint, vLLM first). Importing this package loads neither torch nor the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.core.lazy import lazy_exports

if TYPE_CHECKING:
    from rag.draft.context import gather_context
    from rag.draft.drafter import Drafter, DraftingError, draft_report
    from rag.generate.context import DraftContext, assemble_report
    from rag.generate.extractive import ExtractiveGenerator
    from rag.generate.openai import DRAFT_SCHEMA, DraftError, OpenAIGenerator, build_prompt
    from rag.generate.report import (
        CaseEvidence,
        ClipSummary,
        FindingDraft,
        KBEvidence,
        MeasurementDraft,
        MeasurementEvidence,
        NeighbourCase,
        Provenance,
        Report,
        SectionDraft,
        Sentence,
    )

_LAZY: dict[str, str] = {
    "DraftContext": "rag.generate.context",
    "assemble_report": "rag.generate.context",
    "gather_context": "rag.draft.context",
    "Drafter": "rag.draft.drafter",
    "DraftingError": "rag.draft.drafter",
    "draft_report": "rag.draft.drafter",
    "ExtractiveGenerator": "rag.generate.extractive",
    "DRAFT_SCHEMA": "rag.generate.openai",
    "DraftError": "rag.generate.openai",
    "OpenAIGenerator": "rag.generate.openai",
    "build_prompt": "rag.generate.openai",
    **{
        name: "rag.generate.report"
        for name in (
            "CaseEvidence",
            "ClipSummary",
            "FindingDraft",
            "KBEvidence",
            "MeasurementDraft",
            "MeasurementEvidence",
            "NeighbourCase",
            "Provenance",
            "Report",
            "SectionDraft",
            "Sentence",
        )
    },
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())


__all__ = [
    "DRAFT_SCHEMA",
    "CaseEvidence",
    "ClipSummary",
    "DraftContext",
    "DraftError",
    "Drafter",
    "DraftingError",
    "ExtractiveGenerator",
    "FindingDraft",
    "KBEvidence",
    "MeasurementDraft",
    "MeasurementEvidence",
    "NeighbourCase",
    "OpenAIGenerator",
    "Provenance",
    "Report",
    "SectionDraft",
    "Sentence",
    "assemble_report",
    "build_prompt",
    "draft_report",
    "gather_context",
]
