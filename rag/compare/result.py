"""The comparison of a study with the patient's prior one: typed, with the evidence behind every call.

Plain data (pydantic): a :class:`Comparison` round-trips through JSON unchanged. Every statement of
the narrative cites numbered evidence: the neighbour studies whose votes read each study, and the
change pairs (prior/current studies of other patients whose change resembles this one).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rag.generate.report import ClipSummary

__all__ = [
    "CALLS",
    "ChangePair",
    "Comparison",
    "EvidenceItem",
    "FindingChange",
    "MeasurementDelta",
    "SectionShift",
    "Statement",
    "ViewPair",
]

SCHEMA_VERSION = "rag-comparison/1"
Call = Literal["new", "resolved", "worse", "better", "unchanged"]
CALLS: tuple[str, ...] = ("new", "resolved", "worse", "better", "unchanged")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChangePair(_Model):
    """Another patient's prior/current studies whose change in a section resembles this one."""

    evidence: int = Field(description="the number the narrative cites it by")
    section: str
    prior_study_id: int
    current_study_id: int
    similarity: float = Field(description="cosine of the two changes (current minus prior section embeddings)")
    comparison_text: str = Field("", description="the current study's own comparison line")


class MeasurementDelta(_Model):
    """A measurement in both studies and its change."""

    name: str
    section: str
    unit: str | None
    prior: float | None = Field(description="the prior's reported value, else its neighbour vote")
    prior_source: Literal["report", "vote"] | None
    current: float | None = Field(description="prior + delta: the current study's value as compared")
    delta: float | None = Field(
        description="the change: current vote minus prior vote (shared biases cancel), blended with the change "
        "pairs' reported change as fitted"
    )
    spread: float | None = Field(description="uncertainty of the delta: the neighbours' pooled standard error")
    call: Literal["increased", "decreased", "unchanged"] | None
    threshold: float | None = Field(description="the |delta| that counts as a change (fitted on validation pairs)")
    evidence: list[int] = Field(default_factory=list)


class FindingChange(_Model):
    """One finding's call: new, resolved, worse, better or unchanged."""

    name: str
    section: str
    prior_grade: int = Field(ge=0, le=3)
    prior_source: Literal["report", "vote"]
    current_grade: int = Field(ge=0, le=3)
    call: Call
    score: float = Field(description="signed change score: vote difference plus the change pairs' vote")
    threshold: float | None
    evidence: list[int] = Field(default_factory=list)


class SectionShift(_Model):
    """How far one section's embedding moved between the two studies (0 = identical)."""

    section: str
    shift: float | None = Field(description="1 - cosine of the two section embeddings; None without evidence")
    views: list[str] = Field(default_factory=list, description="views both studies have for this section")


class Statement(_Model):
    """One sentence of the narrative and the evidence numbers it cites."""

    text: str
    evidence: list[int]
    kind: Literal["measurement", "finding", "summary"]
    name: str | None = None


class EvidenceItem(_Model):
    """A numbered piece of evidence: a neighbour study that voted, or a change pair."""

    number: int
    kind: Literal["neighbour", "change_pair", "prior_report"]
    study_id: int
    similarity: float | None = None
    role: str = Field("", description="which study's vote it informed: prior or current")
    section: str | None = None


class ViewPair(_Model):
    """One view seen in both studies: the clip of each shown side by side."""

    view: str
    prior: ClipSummary
    current: ClipSummary


class Comparison(_Model):
    """The comparison of ``current_study_id`` with ``prior_study_id`` (None when the patient has no prior)."""

    schema_version: str = SCHEMA_VERSION
    current_study_id: int
    prior_study_id: int | None
    current_date: dt.date | None = None
    prior_date: dt.date | None = None
    interval_days: int | None = None
    status: Literal["compared", "no prior"]
    reason: str = ""
    measurements: list[MeasurementDelta] = Field(default_factory=list)
    findings: list[FindingChange] = Field(default_factory=list)
    shifts: list[SectionShift] = Field(default_factory=list)
    change_pairs: list[ChangePair] = Field(default_factory=list)
    views: list[ViewPair] = Field(default_factory=list)
    evidence: list[EvidenceItem] = Field(default_factory=list)
    statements: list[Statement] = Field(default_factory=list)
    generator: str = "extractive"
    encoder: str | None = None
    warnings: list[str] = Field(default_factory=list)

    @property
    def text(self) -> str:
        """The narrative, statements joined."""
        return " ".join(s.text for s in self.statements)

    def finding(self, name: str) -> FindingChange | None:
        return next((f for f in self.findings if f.name == name), None)

    def measurement(self, name: str) -> MeasurementDelta | None:
        return next((m for m in self.measurements if m.name == name), None)

    def changed(self) -> list[FindingChange]:
        """The findings called anything but unchanged."""
        return [f for f in self.findings if f.call != "unchanged"]

    def to_json(self, *, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> Comparison:
        return cls.model_validate_json(text)
