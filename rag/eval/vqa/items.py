"""One item model for every VQA suite, and the record of what a loader left out.

A loader never stops a run for one bad row: it names the file, the row and the field, leaves the
row out and counts it (:class:`LoadReport`); results carry that count beside the scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LoadReport", "Skipped", "VQAItem"]


@dataclass(frozen=True)
class VQAItem:
    """One question of a suite.

    Attributes:
        id: the suite's own identifier (``qid`` for VQA-RAD), as a string.
        images: image files the question is about (in order: prior before current for pairs).
        question: the question text.
        answer: the reference answer, as the suite stores it.
        answer_type: ``closed`` or ``open`` (the suite's own label where it has one).
        options: multiple-choice options, letter -> text (empty for free answers).
        categories: breakdown labels (organ, modality, question type, department ...).
        patient: the patient or case the image belongs to, where the suite says (for leakage checks).
        examples: in-context examples that precede the question (SMMILE), in order.
        image_labels: a caption shown before each image ("Last visit image:"), or empty.
        long_answer: the task asks for a paragraph or a reasoned choice, not a word (TemMed-Bench's report
            and image-pair tasks): answerers give it a longer budget and no "answer only" rule.
    """

    id: str
    images: tuple[Path, ...]
    question: str
    answer: str
    answer_type: str
    options: dict[str, str] = field(default_factory=dict)
    categories: dict[str, str] = field(default_factory=dict)
    patient: str | None = None
    examples: tuple[VQAItem, ...] = ()
    image_labels: tuple[str, ...] = ()
    long_answer: bool = False


@dataclass(frozen=True)
class Skipped:
    """A row a loader left out: where it is and what was wrong."""

    file: str
    row: int
    reason: str

    def line(self) -> str:
        return f"{self.file} row {self.row}: {self.reason}"


@dataclass
class LoadReport:
    """The items of one split and the rows left out."""

    suite: str
    split: str
    items: list[VQAItem]
    skipped: list[Skipped] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"{self.suite} {self.split}: {len(self.items)} items, {len(self.skipped)} rows left out"]
        out += [f"  left out: {s.line()}" for s in self.skipped]
        return out
