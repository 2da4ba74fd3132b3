"""A drafted report as Markdown, every sentence followed by the markers of what it rests on."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from rag.generate.report import (
    Report,
    Sentence,
)
from rag.ingest.sections import parse_echo_report
from rag.render.references import (
    BANNER,
    DASH,
    Marker,
    Refs,
    SectionRow,
    created,
    finding_call,
    finding_grades,
    fmt_date,
    fmt_num,
    fmt_prob,
    fmt_score,
    fmt_sim,
    provenance_items,
    section_rows,
    title,
    top_neighbours,
)

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# Markdown.
# --------------------------------------------------------------------------------------------------

_MD_INLINE = re.compile(r"([\\`*_\[\]<|])")
_MD_BLOCK_START = re.compile(r"^([#>+=-])")
_MD_LIST_START = re.compile(r"^(\d+)([.)])")


def _md(text: str) -> str:
    """Untrusted text as one line of literal Markdown (no markup, links, HTML or table breaks)."""
    text = _MD_INLINE.sub(r"\\\1", " ".join(text.split()))
    text = _MD_BLOCK_START.sub(r"\\\1", text)
    return _MD_LIST_START.sub(r"\1\\\2", text)


def _md_code(text: str, *, cell: bool = False) -> str:
    """An identifier as a code span (``|`` escaped inside table cells)."""
    text = " ".join(text.split())
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    span = f"{fence}{pad}{text}{pad}{fence}"
    return span.replace("|", "\\|") if cell else span


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _md_sentence(sentence: Sentence, refs: Refs) -> str:
    markers = " ".join(f"[{_md_marker(m)}]" for m in refs.markers(sentence))
    return f"- {_md(sentence.text)}" + (f" {markers}" if markers else "")


def _md_marker(marker: Marker) -> str:
    return _md(marker.text) if marker.kind == "measurement" else marker.text


def _md_draft(row: SectionRow, report: Report, refs: Refs) -> list[str]:
    if row.draft is not None and row.draft.sentences:
        return [_md_sentence(s, refs) for s in row.draft.sentences]
    if row.name in report.no_evidence:
        return ["_No sentence drafted: no prior case to draw on._"]
    return ["_No sentence drafted._"]


def _md_sections(report: Report, rows: Sequence[SectionRow], refs: Refs, *, with_truth: bool) -> list[str]:
    out = ["## Draft and ground truth" if with_truth else "## Draft", ""]
    for row in rows:
        out += [f"### {_md(row.name)}", ""]
        if not with_truth:
            out += [*_md_draft(row, report, refs), ""]
            continue
        out += ["**Draft**", "", *_md_draft(row, report, refs), "", "**Ground truth**", ""]
        out += [f"> {_md(row.truth)}" if row.truth else "_Not in the stored report._", ""]
    return out


def _md_references(refs: Refs) -> list[str]:
    out = ["## References", "", "_References for the reader, not diagnoses._", ""]
    if not refs.cases and not refs.kb:
        return [*out, "No prior case or knowledge-base passage is cited.", ""]
    if refs.cases:
        rows = [
            [c.label, str(c.study_id), fmt_date(c.study_date), _md(c.section), fmt_sim(c.similarity), str(c.rank)]
            for c in refs.cases.values()
        ]
        out += ["Prior cases (report sections of neighbour studies):", ""]
        out += [*_md_table(["Ref", "Study", "Date", "Section", "Similarity", "Rank"], rows), ""]
    if refs.kb:
        rows = [
            [k.label, _md_code(k.chunk_id, cell=True), _md(k.source), _md(k.heading) or DASH, fmt_score(k.score)]
            for k in refs.kb.values()
        ]
        out += ["Knowledge-base passages:", ""]
        out += [*_md_table(["Ref", "Chunk", "Source", "Heading", "Score"], rows), ""]
    return out


def _md_measurements(report: Report) -> list[str]:
    if not report.measurements:
        return []
    rows = []
    for m in report.measurements:
        top = ", ".join(f"{sid} ({fmt_sim(sim)})" for sid, sim in top_neighbours(m)) or DASH
        searched = f" of {m.n_searched}" if m.n_searched else ""
        value = fmt_num(m.value) if m.value is not None else DASH
        rows.append(
            [
                _md_code(m.name, cell=True),
                _md(m.section),
                value,
                _md(m.unit) if m.unit else DASH,
                f"{len(m.neighbours)}{searched}",
                top,
                _md(m.note) if m.note else "",
            ]
        )
    header = ["Measurement", "Section", "Value", "Unit", "Neighbours", "Top neighbours: study (similarity)", "Note"]
    return [
        "## Measurements",
        "",
        "_Similarity-weighted vote of the neighbour studies._",
        "",
        *_md_table(header, rows),
        "",
    ]


def _md_findings(report: Report) -> list[str]:
    if not report.findings:
        return []
    rows = [
        [
            _md_code(f.name, cell=True),
            _md(f.section),
            fmt_prob(f.probability),
            finding_call(f),
            fmt_prob(f.threshold),
            finding_grades(f),
            str(len(f.neighbours)),
            _md(f.note) if f.note else "",
        ]
        for f in report.findings
    ]
    header = ["Finding", "Section", "Probability", "Call", "Threshold", "Grades 0/1/2/3", "Neighbours", "Note"]
    return ["## Findings", "", *_md_table(header, rows), ""]


def _md_list(title: str, items: Sequence[str]) -> list[str]:
    return [f"## {title}", "", *(f"- {_md(item)}" for item in items), ""] if items else []


def render_markdown(report: Report, *, ground_truth: str | None = None) -> str:
    """The report as Markdown that reads well in a terminal and in a Markdown viewer.

    Args:
        report: the drafted report.
        ground_truth: the study's own stored report text; when given, each section shows the draft
            and the stored text one after the other ("Draft" / "Ground truth").

    Returns:
        The Markdown text, ending with a newline. Report text is escaped so that it renders literally.
    """
    truth = parse_echo_report(ground_truth) if ground_truth is not None else None
    rows = section_rows(report, truth)
    refs = Refs.collect(report, rows)
    date = report.study_date.isoformat() if report.study_date is not None else "unknown"
    out = [
        f"# {title(report)}",
        "",
        f"Patient {_md_code(report.patient_pseudonym)} · study date {date} · drafted {created(report)} "
        f"by {_md_code(report.provenance.generator)}",
        "",
        f"> **Not a diagnosis.** {BANNER}",
        "",
    ]
    out += _md_sections(report, rows, refs, with_truth=truth is not None)
    out += _md_references(refs)
    out += _md_measurements(report)
    out += _md_findings(report)
    out += _md_list("Sections without evidence", report.no_evidence)
    out += _md_list("Left out of the prompt", report.dropped_context)
    out += _md_list("Warnings", report.warnings)
    out += ["## Provenance", "", *(f"- {k}: {_md(v)}" for k, v in provenance_items(report))]
    return "\n".join(out) + "\n"
