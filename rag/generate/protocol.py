"""The generator role: a study's drafting context in, a report with per-sentence provenance out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from rag.generate.context import DraftContext
    from rag.generate.report import Report

__all__ = ["Generator"]


@runtime_checkable
class Generator(Protocol):
    """Anything that drafts a :class:`~rag.generate.report.Report` from a :class:`~rag.generate.context.DraftContext`.

    Implementations: :class:`~rag.generate.extractive.ExtractiveGenerator` (no server) and
    :class:`~rag.generate.openai.OpenAIGenerator` (any OpenAI-compatible endpoint, vLLM first). Every
    sentence of the report carries the IDs and similarities of the cases and passages behind it.
    """

    name: str

    def generate(self, context: DraftContext) -> Report:
        """Draft the report of ``context``'s study."""
        ...
