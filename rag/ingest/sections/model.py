"""What a parsed report is: its sections in schema order, and the helpers every parser shares.

Echo reports use the schema ``ECHO_SECTIONS`` + ``FREE_TEXT``, chest X-ray reports ``CXR_SECTIONS``
+ ``FREE_TEXT``; a section's ``position`` is its index in that schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from rag.vocab.sections import CXR_SECTIONS, ECHO_SECTIONS, FREE_TEXT

__all__ = ["CXR_SCHEMA", "ECHO_SCHEMA", "ParsedReport", "ReportKind", "ReportSection", "assemble", "squash"]

ReportKind = Literal["echo", "cxr"]

ECHO_SCHEMA = (*ECHO_SECTIONS, FREE_TEXT)
CXR_SCHEMA = (*CXR_SECTIONS, FREE_TEXT)


@dataclass(frozen=True)
class ReportSection:
    """One section of a parsed report.

    ``position`` is the section's index in its schema (``ECHO_SECTIONS`` or ``CXR_SECTIONS``,
    followed by ``FREE_TEXT``), so a section keeps the same position whichever others are present.
    """

    name: str
    text: str
    position: int


@dataclass(frozen=True)
class ParsedReport:
    """A report split into its non-empty sections, in schema order."""

    kind: ReportKind
    sections: tuple[ReportSection, ...]

    def get(self, name: str) -> str | None:
        """Text of section ``name``, or None when the report has no such section."""
        for section in self.sections:
            if section.name == name:
                return section.text
        return None

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the sections present, in schema order."""
        return tuple(section.name for section in self.sections)

    def as_dict(self) -> dict[str, str]:
        """Section name to text, in schema order."""
        return {section.name: section.text for section in self.sections}


def assemble(kind: ReportKind, schema: tuple[str, ...], buckets: Mapping[str, list[str]]) -> ParsedReport:
    sections = []
    for position, name in enumerate(schema):
        text = " ".join(part for part in buckets.get(name, ()) if part)
        if text:
            sections.append(ReportSection(name=name, text=text, position=position))
    return ParsedReport(kind=kind, sections=tuple(sections))


def squash(text: str) -> str:
    return " ".join(text.split())
