"""Report drafting: retrieved cases and votes in, a report with per-sentence provenance out.

::

    from rag.draft import Drafter, render_markdown

    drafter = Drafter()                      # the workspace's checkpoint, embeddings, KB
    report = drafter.draft(42)               # or a folder of DICOMs, ingested on the fly
    print(render_markdown(report))
    report.measurement("lvef").value, report.sections[0].sentences[0].evidence

Generators: :class:`ExtractiveGenerator` (default, no server) and :class:`OpenAIGenerator` (any
OpenAI-compatible endpoint, vLLM first). Importing this package loads neither torch nor the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rag._lazy import resolve

if TYPE_CHECKING:
    from rag.draft.context import DraftContext, assemble_report, gather_context
    from rag.draft.drafter import Drafter, DraftingError, draft_report
    from rag.draft.extractive import ExtractiveGenerator
    from rag.draft.llm import DRAFT_SCHEMA, DraftError, OpenAIGenerator, build_prompt
    from rag.draft.render import render_html, render_markdown, write_report
    from rag.draft.report import (
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
    "DraftContext": "rag.draft.context",
    "assemble_report": "rag.draft.context",
    "gather_context": "rag.draft.context",
    "Drafter": "rag.draft.drafter",
    "DraftingError": "rag.draft.drafter",
    "draft_report": "rag.draft.drafter",
    "ExtractiveGenerator": "rag.draft.extractive",
    "DRAFT_SCHEMA": "rag.draft.llm",
    "DraftError": "rag.draft.llm",
    "OpenAIGenerator": "rag.draft.llm",
    "build_prompt": "rag.draft.llm",
    "render_html": "rag.draft.render",
    "render_markdown": "rag.draft.render",
    "write_report": "rag.draft.render",
    **{
        name: "rag.draft.report"
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


def __getattr__(name: str) -> Any:
    return resolve(__name__, _LAZY, globals(), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
    "render_html",
    "render_markdown",
    "write_report",
]
