"""Sentence splitting and measurement filling for drafted section text.

A neighbour's section text states the neighbour's numbers. Before a sentence enters a draft, every
value that the neighbour vote predicts (LVEF, LVIDd, PASP, ...) is replaced by the voted value, and
every other number with a unit is blanked (``___ m/s``) for the reader to measure: a draft never
passes a stranger's number off as the patient's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from rag.ingest.measurements import measurement_spans

__all__ = ["BLANK", "FilledSentence", "fill_measurements", "format_value", "split_sentences"]

BLANK = "___"

# a sentence ends at . ! ? followed by whitespace and a capital/digit, not inside numbers like "4.9"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")
_NUMBER_UNIT = re.compile(
    r"(?<![\w.])\d+(?:\.\d+)?(?:\s*(?:-|–|to)\s*\d+(?:\.\d+)?)?"
    r"\s*(?P<unit>%|mm\s*Hg|mmHg|mL/m2|ml/m2|mL/m²|cm/s|m/s|cm2|cm²|cm|mm|mL|ml|ms|bpm)(?![\w])"
)


def split_sentences(text: str) -> list[str]:
    """Sentences of a section text (whitespace-trimmed, empty ones dropped)."""
    flat = " ".join(text.split())
    return [s.strip() for s in _SENTENCE_END.split(flat) if s.strip()]


def format_value(value: float, unit: str | None) -> str:
    """A voted value as a report would write it: ``55%``, ``4.9 cm``, ``38 mmHg``, ``19 mm``."""
    if unit == "%":
        return f"{value:.0f}%"
    if unit in ("cm", "m/s", "cm2"):
        return f"{value:.1f} {unit}"
    return f"{value:.0f} {unit}" if unit else f"{value:.1f}"


@dataclass(frozen=True)
class FilledSentence:
    """A sentence after filling: its text, the voted values it now states, and what was blanked."""

    text: str
    filled: tuple[tuple[str, float, str | None], ...]  # (measurement name, value, unit)
    blanked: tuple[str, ...]  # the neighbour's original value texts that were blanked


def fill_measurements(sentence: str, voted: Mapping[str, tuple[float, str | None]]) -> FilledSentence:
    """Replace the sentence's measurement values with voted ones; blank every other number with a unit.

    Args:
        sentence: one sentence of a neighbour's section text.
        voted: measurement name as read by ``rag.ingest.measurements`` (``lvef``, ``lvidd``, ``pasp`` ...)
            -> (value, canonical unit) predicted for the drafted study.
    """
    pieces: list[str] = []
    filled: list[tuple[str, float, str | None]] = []
    blanked: list[str] = []
    at = 0
    for span in measurement_spans(sentence):
        name = span.measurement.name
        original = sentence[span.start : span.end]
        if name in voted:
            value, unit = voted[name]
            replacement = format_value(value, unit)
            filled.append((name, value, unit))
        else:
            unit_match = _NUMBER_UNIT.fullmatch(original.strip())
            unit = unit_match["unit"] if unit_match else span.measurement.unit
            replacement = f"{BLANK} {unit}" if unit != "%" else f"{BLANK}%"
            blanked.append(original)
        pieces.append(_blank_rest(sentence[at : span.start], blanked))
        pieces.append(replacement)
        at = span.end
    pieces.append(_blank_rest(sentence[at:], blanked))
    return FilledSentence("".join(pieces), tuple(filled), tuple(blanked))


def _blank_rest(text: str, blanked: list[str]) -> str:
    """Blank numbers with units that no measurement rule read (velocities, gradients, areas ...)."""

    def repl(match: re.Match[str]) -> str:
        blanked.append(match.group(0))
        unit = match["unit"]
        return f"{BLANK}%" if unit == "%" else f"{BLANK} {unit}"

    return _NUMBER_UNIT.sub(repl, text)
