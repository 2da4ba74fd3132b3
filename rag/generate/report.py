"""The drafted report: typed, with the evidence behind every sentence, number and finding.

A :class:`Report` is what every generator returns and every renderer reads. Each sentence carries the
IDs and similarities of the prior cases (report sections of other studies) and knowledge-base chunks
it rests on; measurements and findings carry the neighbour studies that voted for them. Everything
here is plain data (pydantic), so a report round-trips through JSON unchanged.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "rag-report/1"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CaseEvidence(_Model):
    """A prior case's report section that a sentence rests on."""

    kind: Literal["case"] = "case"
    study_id: int
    report_section_id: int
    section: str
    similarity: float
    rank: int = Field(description="1-based rank among the neighbours retrieved for the section")
    study_date: dt.date | None = None


class KBEvidence(_Model):
    """A knowledge-base chunk that a sentence rests on."""

    kind: Literal["kb"] = "kb"
    chunk_id: str
    source: str
    heading: str = ""
    score: float = Field(description="fused retrieval score (reciprocal rank fusion of dense and BM25)")


class MeasurementEvidence(_Model):
    """A number in a sentence that was set from the neighbour vote, not copied from a neighbour."""

    kind: Literal["measurement"] = "measurement"
    name: str
    value: float
    unit: str | None = None


class FindingEvidence(_Model):
    """A grade in a sentence that states the neighbour vote of a finding (the vote's own wording)."""

    kind: Literal["finding"] = "finding"
    name: str
    grade: int = Field(ge=0, le=3, description="0 none/normal, 1 mild, 2 moderate, 3 severe")
    probability: float | None = Field(None, description="the vote's probability of grade >= the positive grade")


Evidence = CaseEvidence | KBEvidence | MeasurementEvidence | FindingEvidence


class Sentence(_Model):
    """One sentence of a drafted section and what it rests on."""

    text: str
    evidence: list[Evidence] = Field(default_factory=list)


class SectionDraft(_Model):
    """The drafted text of one report section, sentence by sentence."""

    name: str
    sentences: list[Sentence] = Field(default_factory=list)

    @property
    def text(self) -> str:
        """The section's sentences joined with single spaces."""
        return " ".join(s.text for s in self.sentences)


class Neighbour(_Model):
    """A neighbour study and its similarity to the drafted study."""

    study_id: int
    similarity: float


class MeasurementDraft(_Model):
    """A continuous value (e.g. LVEF) from the similarity-weighted neighbour vote."""

    name: str
    section: str
    value: float | None
    unit: str | None = None
    neighbours: list[Neighbour] = Field(default_factory=list)
    n_searched: int = 0
    note: str | None = None


class FindingDraft(_Model):
    """A binary finding (e.g. pericardial effusion) with its neighbour-vote probability."""

    name: str
    section: str
    probability: float | None
    positive: bool | None = None
    threshold: float | None = None
    grade_probabilities: tuple[float, float, float, float] | None = None
    neighbours: list[Neighbour] = Field(default_factory=list)
    note: str | None = None


class ClipSummary(_Model):
    """A clip of the drafted study with its predicted view."""

    clip_id: int
    path: str = Field(description="clip file, relative to the workspace's media folder")
    view: str | None = Field(description="most probable view from the encoder's view head")
    view_probability: float | None = None
    stored_view: str | None = Field(default=None, description="view read from the DICOM header at ingestion")


class NeighbourCase(_Model):
    """A prior study that supplied text to the draft."""

    study_id: int
    patient_pseudonym: str
    study_date: dt.date | None = None
    similarity: float = Field(description="highest section similarity of this study to the drafted one")
    sections: list[str] = Field(default_factory=list, description="sections in which it was retrieved")


class Provenance(_Model):
    """How the draft was made: encoder, embeddings, retrieval parameters, generator."""

    encoder: str
    embeddings: str
    weights: str
    k: int
    generator: str
    model: str | None = None
    exclude_same_patient: bool = True
    before_date: dt.date | None = None
    kb_chunks: int = 0
    created: dt.datetime


class Report(_Model):
    """A drafted echo report: sections, measurements, findings, clips, neighbours and provenance.

    Every neighbour case and KB chunk is a reference for the reader, not a diagnosis; the draft is for
    a cardiologist to check line by line.
    """

    schema_version: str = SCHEMA_VERSION
    study_id: int
    patient_pseudonym: str
    study_date: dt.date | None = None
    sections: list[SectionDraft]
    measurements: list[MeasurementDraft] = Field(default_factory=list)
    findings: list[FindingDraft] = Field(default_factory=list)
    clips: list[ClipSummary] = Field(default_factory=list)
    neighbours: list[NeighbourCase] = Field(default_factory=list)
    no_evidence: list[str] = Field(default_factory=list, description="sections with no prior case to draw on")
    dropped_context: list[str] = Field(
        default_factory=list, description="retrieved cases/passages left out of the LLM prompt (token budget)"
    )
    warnings: list[str] = Field(default_factory=list)
    provenance: Provenance

    def section(self, name: str) -> SectionDraft | None:
        """The drafted section called ``name``, if any."""
        return next((s for s in self.sections if s.name == name), None)

    def measurement(self, name: str) -> MeasurementDraft | None:
        """The measurement called ``name`` (e.g. ``"lvef"``), if any."""
        return next((m for m in self.measurements if m.name == name), None)

    def finding(self, name: str) -> FindingDraft | None:
        """The finding called ``name`` (e.g. ``"pericardial_effusion"``), if any."""
        return next((f for f in self.findings if f.name == name), None)

    @property
    def text(self) -> str:
        """The whole draft as plain text: ``Section: sentences`` lines in report order."""
        return "\n".join(f"{s.name}: {s.text}" for s in self.sections if s.sentences)

    def to_json(self, *, indent: int | None = 2) -> str:
        """The report as JSON (round-trips with :meth:`from_json`)."""
        return self.model_dump_json(indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> Report:
        """Parse a report written by :meth:`to_json`."""
        return cls.model_validate_json(text)
