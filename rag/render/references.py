"""What the renderings share: the numbered references of a report (cases, KB chunks, voted
numbers), its section rows beside the ground truth, and value formatting."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from rag.core.errors import RagError
from rag.generate.report import (
    CaseEvidence,
    Evidence,
    FindingDraft,
    FindingEvidence,
    KBEvidence,
    MeasurementDraft,
    Report,
    SectionDraft,
    Sentence,
)
from rag.ingest.sections import ParsedReport
from rag.vocab.sections import ECHO_SECTIONS, FREE_TEXT

log = logging.getLogger(__name__)

GRADE_WORDS = ("none", "mild", "moderate", "severe")

THUMBNAIL_PX = 128
"""Longest side of a clip thumbnail, in pixels (smaller frames are not enlarged)."""
NEIGHBOUR_THUMBNAILS = 4
"""Thumbnails shown per study in the neighbour panel."""

BANNER = (
    "This is a draft for a cardiologist to check line by line. Neighbour cases and knowledge-base "
    "passages are references for the reader, not diagnoses; check every sentence against this "
    "study's images and measurements."
)
DASH = "—"
_SCHEMA: tuple[str, ...] = (*ECHO_SECTIONS, FREE_TEXT)


class RenderError(RagError, ValueError):
    """A report cannot be rendered or written as asked (the message names the value and the allowed ones)."""


# --------------------------------------------------------------------------------------------------
# What both renderings share: section rows, reference numbering, evidence markers, number formats.
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SectionRow:
    """One section as displayed: the draft (None when only the ground truth has it) and the stored text."""

    name: str
    draft: SectionDraft | None
    truth: str | None


def section_rows(report: Report, truth: ParsedReport | None) -> list[SectionRow]:
    """The drafted sections plus those only the ground truth has, in echo report order."""
    truth_texts = truth.as_dict() if truth is not None else {}
    drafted = {s.name: s for s in report.sections}
    names = list(dict.fromkeys([*drafted, *truth_texts]))
    names.sort(key=lambda n: _SCHEMA.index(n) if n in _SCHEMA else len(_SCHEMA))
    return [SectionRow(n, drafted.get(n), truth_texts.get(n)) for n in names]


@dataclass
class CaseRef:
    """A numbered prior case: one report section of one neighbour study."""

    label: str
    study_id: int
    report_section_id: int
    section: str
    similarity: float
    rank: int
    study_date: dt.date | None

    @property
    def anchor(self) -> str:
        return f"ref-{self.label.lower()}"


@dataclass
class KBRef:
    """A numbered knowledge-base chunk."""

    label: str
    chunk_id: str
    source: str
    heading: str
    score: float

    @property
    def anchor(self) -> str:
        return f"ref-{self.label.lower()}"


@dataclass(frozen=True)
class Marker:
    """The evidence marker after a sentence: its text, where it links to and its hover text."""

    kind: Literal["case", "kb", "measurement"]
    text: str
    anchor: str | None
    title: str


@dataclass
class Refs:
    """Numbers for the evidence of a report: ``C1..`` per (study, report section), ``K1..`` per chunk."""

    neighbour_dates: Mapping[int, dt.date | None]
    measurement_anchors: Mapping[str, str]
    cases: dict[tuple[int, int], CaseRef] = field(default_factory=dict)
    kb: dict[str, KBRef] = field(default_factory=dict)

    @classmethod
    def collect(cls, report: Report, rows: Sequence[SectionRow]) -> Refs:
        """Number every piece of evidence in display order."""
        refs = cls(
            neighbour_dates={n.study_id: n.study_date for n in report.neighbours},
            measurement_anchors=measurement_anchors(report.measurements),
        )
        for row in rows:
            for sentence in row.draft.sentences if row.draft is not None else ():
                for ev in sentence.evidence:
                    if isinstance(ev, CaseEvidence):
                        refs.case(ev)
                    elif isinstance(ev, KBEvidence):
                        refs.chunk(ev)
        return refs

    def case(self, ev: CaseEvidence) -> CaseRef:
        """The numbered case of ``ev``, keeping the best similarity and rank seen for it."""
        key = (ev.study_id, ev.report_section_id)
        ref = self.cases.get(key)
        if ref is None:
            ref = CaseRef(
                label=f"C{len(self.cases) + 1}",
                study_id=ev.study_id,
                report_section_id=ev.report_section_id,
                section=ev.section,
                similarity=ev.similarity,
                rank=ev.rank,
                study_date=ev.study_date or self.neighbour_dates.get(ev.study_id),
            )
            self.cases[key] = ref
        else:
            ref.similarity = max(ref.similarity, ev.similarity)
            ref.rank = min(ref.rank, ev.rank)
        return ref

    def chunk(self, ev: KBEvidence) -> KBRef:
        """The numbered knowledge-base chunk of ``ev``."""
        ref = self.kb.get(ev.chunk_id)
        if ref is None:
            ref = KBRef(f"K{len(self.kb) + 1}", ev.chunk_id, ev.source, ev.heading, ev.score)
            self.kb[ev.chunk_id] = ref
        return ref

    def markers(self, sentence: Sentence) -> list[Marker]:
        """The sentence's markers in evidence order, one per reference (a case with its best similarity)."""
        best: dict[str, float] = {}
        order: dict[str, Evidence] = {}
        for ev in sentence.evidence:
            if isinstance(ev, CaseEvidence):
                label = self.case(ev).label
                best[label] = max(best.get(label, ev.similarity), ev.similarity)
            elif isinstance(ev, KBEvidence):
                label = self.chunk(ev).label
            elif isinstance(ev, FindingEvidence):
                label = f"V {ev.name}={GRADE_WORDS[ev.grade]}"
            else:
                label = f"M {ev.name}={with_unit(ev.value, ev.unit)}"
            order.setdefault(label, ev)
        out: list[Marker] = []
        for label, ev in order.items():
            if isinstance(ev, CaseEvidence):
                ref = self.case(ev)
                title = (
                    f"{ref.label}: study {ref.study_id}, {fmt_date(ref.study_date)}, {ref.section}, "
                    f"similarity {fmt_sim(best[label])}, rank {ev.rank}"
                )
                out.append(Marker("case", f"{label} {fmt_sim(best[label])}", ref.anchor, title))
            elif isinstance(ev, KBEvidence):
                kb = self.chunk(ev)
                heading = f", {kb.heading}" if kb.heading else ""
                out.append(Marker("kb", label, kb.anchor, f"{label}: {kb.source}{heading} ({kb.chunk_id})"))
            elif isinstance(ev, FindingEvidence):
                p = "" if ev.probability is None else f", probability {fmt_prob(ev.probability)}"
                title = f"{ev.name} graded {GRADE_WORDS[ev.grade]} by the neighbour vote{p} (the vote's wording)"
                out.append(Marker("measurement", label, None, title))
            else:
                title = f"{ev.name} = {with_unit(ev.value, ev.unit)}, set from the neighbour vote"
                out.append(Marker("measurement", label, self.measurement_anchors.get(ev.name), title))
        return out

    def section_cases(self, section: SectionDraft | None) -> list[CaseRef]:
        """The numbered cases cited in ``section``, most similar first."""
        found: dict[str, CaseRef] = {}
        for sentence in section.sentences if section is not None else ():
            for ev in sentence.evidence:
                if isinstance(ev, CaseEvidence):
                    ref = self.case(ev)
                    found[ref.label] = ref
        return sorted(found.values(), key=lambda r: -r.similarity)


def measurement_anchors(measurements: Sequence[MeasurementDraft]) -> dict[str, str]:
    anchors: dict[str, str] = {}
    for i, m in enumerate(measurements, start=1):
        anchors.setdefault(m.name, f"meas-{i}")
    return anchors


def fmt_num(value: float) -> str:
    """A value with at most two decimals and no trailing zeros (55.0 -> ``55``, 4.85 -> ``4.85``)."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def with_unit(value: float | None, unit: str | None) -> str:
    if value is None:
        return DASH
    if not unit:
        return fmt_num(value)
    return f"{fmt_num(value)}{unit}" if unit == "%" else f"{fmt_num(value)} {unit}"


def fmt_sim(value: float) -> str:
    return f"{value:.2f}"


def fmt_score(value: float) -> str:
    """A fused retrieval score: reciprocal rank fusion gives small numbers (about 0.01-0.03), so three decimals."""
    return f"{value:.3f}"


def fmt_date(value: dt.date | None) -> str:
    return value.isoformat() if value is not None else "date unknown"


def fmt_prob(value: float | None) -> str:
    return DASH if value is None else f"{value:.2f}"


def finding_call(finding: FindingDraft) -> str:
    if finding.positive is None:
        return DASH
    return "positive" if finding.positive else "negative"


def finding_grades(finding: FindingDraft) -> str:
    if finding.grade_probabilities is None:
        return DASH
    return " / ".join(f"{p:.2f}" for p in finding.grade_probabilities)


def top_neighbours(m: MeasurementDraft | FindingDraft, n: int = 3) -> list[tuple[int, float]]:
    top = sorted(m.neighbours, key=lambda nb: -nb.similarity)[:n]
    return [(nb.study_id, nb.similarity) for nb in top]


def created(report: Report) -> str:
    return report.provenance.created.isoformat(timespec="seconds")


def provenance_items(report: Report) -> list[tuple[str, str]]:
    p = report.provenance
    return [
        ("Encoder", p.encoder),
        ("Embeddings", p.embeddings),
        ("View weights", p.weights),
        ("Neighbours per section (k)", str(p.k)),
        ("Generator", p.generator),
        ("Model", p.model or DASH),
        ("Same patient excluded", "yes" if p.exclude_same_patient else "no"),
        ("Only studies before", p.before_date.isoformat() if p.before_date is not None else DASH),
        ("Knowledge-base chunks", str(p.kb_chunks)),
        ("Created", created(report)),
        ("Schema", report.schema_version),
    ]


def title(report: Report) -> str:
    return f"Draft echo report: study {report.study_id}"
