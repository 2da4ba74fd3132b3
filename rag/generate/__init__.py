"""Generators: a study's drafting context in, a report with per-sentence provenance out.

:class:`Generator` is the role; :class:`ExtractiveGenerator` (default, no server) and
:class:`OpenAIGenerator` (any OpenAI-compatible endpoint, vLLM first) fill it. The report model
(:class:`Report` and its parts) and the context they read (:class:`DraftContext`) live here too.
Importing this package loads nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.core.lazy import lazy_exports

if TYPE_CHECKING:
    from rag.generate.context import DraftContext, assemble_report
    from rag.generate.extractive import ExtractiveGenerator
    from rag.generate.openai import DRAFT_SCHEMA, DraftError, OpenAIGenerator, build_prompt
    from rag.generate.protocol import Generator
    from rag.generate.report import Report

_LAZY: dict[str, str] = {
    "DraftContext": "rag.generate.context",
    "assemble_report": "rag.generate.context",
    "ExtractiveGenerator": "rag.generate.extractive",
    "DRAFT_SCHEMA": "rag.generate.openai",
    "DraftError": "rag.generate.openai",
    "OpenAIGenerator": "rag.generate.openai",
    "build_prompt": "rag.generate.openai",
    "Generator": "rag.generate.protocol",
    "Report": "rag.generate.report",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())

__all__ = [
    "DRAFT_SCHEMA",
    "DraftContext",
    "DraftError",
    "ExtractiveGenerator",
    "Generator",
    "OpenAIGenerator",
    "Report",
    "assemble_report",
    "build_prompt",
]
