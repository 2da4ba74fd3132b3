"""Rendering a drafted report for the reader: Markdown, one self-contained HTML page, or JSON.

Every sentence is followed by compact markers of what it rests on, numbered once per report:

- ``[C1 0.82]``: a prior case, one number per distinct (study, report section), with the sentence's
  similarity to it;
- ``[K2]``: a knowledge-base chunk;
- ``[M lvef=55%]``: a number set from the neighbour vote (see the measurements table).

A "References" part lists the numbered cases and chunks. Neighbour cases and knowledge-base passages
are references for the reader, never diagnoses; both renderings say so in a banner at the top.

With ``ground_truth`` (the study's own stored report text, split with
:func:`rag.ingest.sections.parse_echo_report`) each section shows the draft and the stored text
together. Sections appear in echo report order (``ECHO_SECTIONS``, then Free Text), others after.

The HTML page needs nothing outside itself: inline CSS, clip thumbnails as base64 PNG data URIs, no
script and no external URL. All report text is HTML-escaped; a clip file that is missing or unreadable
becomes a placeholder box, never an error.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from rag.draft.report import (
    CaseEvidence,
    ClipSummary,
    FindingDraft,
    KBEvidence,
    MeasurementDraft,
    MeasurementEvidence,
    Report,
    SectionDraft,
    Sentence,
)
from rag.errors import DecodeError, RagError
from rag.ingest.clipfile import read_clip, write_atomic
from rag.ingest.sections import ECHO_SECTIONS, FREE_TEXT, ParsedReport, parse_echo_report

if TYPE_CHECKING:
    from rag.store import Store

__all__ = [
    "BANNER",
    "FORMATS",
    "NEIGHBOUR_THUMBNAILS",
    "THUMBNAIL_PX",
    "Format",
    "RenderError",
    "render_html",
    "render_markdown",
    "write_report",
]

log = logging.getLogger(__name__)

Format = Literal["md", "json", "html"]
FORMATS: tuple[Format, ...] = ("md", "json", "html")
_SUFFIXES: dict[str, Format] = {".md": "md", ".markdown": "md", ".json": "json", ".html": "html", ".htm": "html"}

THUMBNAIL_PX = 128
"""Longest side of a clip thumbnail, in pixels (smaller frames are not enlarged)."""
NEIGHBOUR_THUMBNAILS = 4
"""Thumbnails shown per study in the neighbour panel."""

BANNER = (
    "This is a draft for a cardiologist to check line by line. Neighbour cases and knowledge-base "
    "passages are references for the reader, not diagnoses; check every sentence against this "
    "study's images and measurements."
)
_DASH = "—"
_SCHEMA: tuple[str, ...] = (*ECHO_SECTIONS, FREE_TEXT)


class RenderError(RagError, ValueError):
    """A report cannot be rendered or written as asked (the message names the value and the allowed ones)."""


# --------------------------------------------------------------------------------------------------
# What both renderings share: section rows, reference numbering, evidence markers, number formats.
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SectionRow:
    """One section as displayed: the draft (None when only the ground truth has it) and the stored text."""

    name: str
    draft: SectionDraft | None
    truth: str | None


def _section_rows(report: Report, truth: ParsedReport | None) -> list[_SectionRow]:
    """The drafted sections plus those only the ground truth has, in echo report order."""
    truth_texts = truth.as_dict() if truth is not None else {}
    drafted = {s.name: s for s in report.sections}
    names = list(dict.fromkeys([*drafted, *truth_texts]))
    names.sort(key=lambda n: _SCHEMA.index(n) if n in _SCHEMA else len(_SCHEMA))
    return [_SectionRow(n, drafted.get(n), truth_texts.get(n)) for n in names]


@dataclass
class _CaseRef:
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
class _KBRef:
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
class _Marker:
    """The evidence marker after a sentence: its text, where it links to and its hover text."""

    kind: Literal["case", "kb", "measurement"]
    text: str
    anchor: str | None
    title: str


@dataclass
class _Refs:
    """Numbers for the evidence of a report: ``C1..`` per (study, report section), ``K1..`` per chunk."""

    neighbour_dates: Mapping[int, dt.date | None]
    measurement_anchors: Mapping[str, str]
    cases: dict[tuple[int, int], _CaseRef] = field(default_factory=dict)
    kb: dict[str, _KBRef] = field(default_factory=dict)

    @classmethod
    def collect(cls, report: Report, rows: Sequence[_SectionRow]) -> _Refs:
        """Number every piece of evidence in display order."""
        refs = cls(
            neighbour_dates={n.study_id: n.study_date for n in report.neighbours},
            measurement_anchors=_measurement_anchors(report.measurements),
        )
        for row in rows:
            for sentence in row.draft.sentences if row.draft is not None else ():
                for ev in sentence.evidence:
                    if isinstance(ev, CaseEvidence):
                        refs.case(ev)
                    elif isinstance(ev, KBEvidence):
                        refs.chunk(ev)
        return refs

    def case(self, ev: CaseEvidence) -> _CaseRef:
        """The numbered case of ``ev``, keeping the best similarity and rank seen for it."""
        key = (ev.study_id, ev.report_section_id)
        ref = self.cases.get(key)
        if ref is None:
            ref = _CaseRef(
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

    def chunk(self, ev: KBEvidence) -> _KBRef:
        """The numbered knowledge-base chunk of ``ev``."""
        ref = self.kb.get(ev.chunk_id)
        if ref is None:
            ref = _KBRef(f"K{len(self.kb) + 1}", ev.chunk_id, ev.source, ev.heading, ev.score)
            self.kb[ev.chunk_id] = ref
        return ref

    def markers(self, sentence: Sentence) -> list[_Marker]:
        """The sentence's markers in evidence order, one per reference (a case with its best similarity)."""
        best: dict[str, float] = {}
        order: dict[str, CaseEvidence | KBEvidence | MeasurementEvidence] = {}
        for ev in sentence.evidence:
            if isinstance(ev, CaseEvidence):
                label = self.case(ev).label
                best[label] = max(best.get(label, ev.similarity), ev.similarity)
            elif isinstance(ev, KBEvidence):
                label = self.chunk(ev).label
            else:
                label = f"M {ev.name}={_with_unit(ev.value, ev.unit)}"
            order.setdefault(label, ev)
        out: list[_Marker] = []
        for label, ev in order.items():
            if isinstance(ev, CaseEvidence):
                ref = self.case(ev)
                title = (
                    f"{ref.label}: study {ref.study_id}, {_date(ref.study_date)}, {ref.section}, "
                    f"similarity {_sim(best[label])}, rank {ev.rank}"
                )
                out.append(_Marker("case", f"{label} {_sim(best[label])}", ref.anchor, title))
            elif isinstance(ev, KBEvidence):
                kb = self.chunk(ev)
                heading = f", {kb.heading}" if kb.heading else ""
                out.append(_Marker("kb", label, kb.anchor, f"{label}: {kb.source}{heading} ({kb.chunk_id})"))
            else:
                title = f"{ev.name} = {_with_unit(ev.value, ev.unit)}, set from the neighbour vote"
                out.append(_Marker("measurement", label, self.measurement_anchors.get(ev.name), title))
        return out

    def section_cases(self, section: SectionDraft | None) -> list[_CaseRef]:
        """The numbered cases cited in ``section``, most similar first."""
        found: dict[str, _CaseRef] = {}
        for sentence in section.sentences if section is not None else ():
            for ev in sentence.evidence:
                if isinstance(ev, CaseEvidence):
                    ref = self.case(ev)
                    found[ref.label] = ref
        return sorted(found.values(), key=lambda r: -r.similarity)


def _measurement_anchors(measurements: Sequence[MeasurementDraft]) -> dict[str, str]:
    anchors: dict[str, str] = {}
    for i, m in enumerate(measurements, start=1):
        anchors.setdefault(m.name, f"meas-{i}")
    return anchors


def _num(value: float) -> str:
    """A value with at most two decimals and no trailing zeros (55.0 -> ``55``, 4.85 -> ``4.85``)."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _with_unit(value: float | None, unit: str | None) -> str:
    if value is None:
        return _DASH
    if not unit:
        return _num(value)
    return f"{_num(value)}{unit}" if unit == "%" else f"{_num(value)} {unit}"


def _sim(value: float) -> str:
    return f"{value:.2f}"


def _score(value: float) -> str:
    """A fused retrieval score: reciprocal rank fusion gives small numbers (about 0.01-0.03), so three decimals."""
    return f"{value:.3f}"


def _date(value: dt.date | None) -> str:
    return value.isoformat() if value is not None else "date unknown"


def _prob(value: float | None) -> str:
    return _DASH if value is None else f"{value:.2f}"


def _call(finding: FindingDraft) -> str:
    if finding.positive is None:
        return _DASH
    return "positive" if finding.positive else "negative"


def _grades(finding: FindingDraft) -> str:
    if finding.grade_probabilities is None:
        return _DASH
    return " / ".join(f"{p:.2f}" for p in finding.grade_probabilities)


def _top_neighbours(m: MeasurementDraft | FindingDraft, n: int = 3) -> list[tuple[int, float]]:
    top = sorted(m.neighbours, key=lambda nb: -nb.similarity)[:n]
    return [(nb.study_id, nb.similarity) for nb in top]


def _created(report: Report) -> str:
    return report.provenance.created.isoformat(timespec="seconds")


def _provenance_items(report: Report) -> list[tuple[str, str]]:
    p = report.provenance
    return [
        ("Encoder", p.encoder),
        ("Embeddings", p.embeddings),
        ("View weights", p.weights),
        ("Neighbours per section (k)", str(p.k)),
        ("Generator", p.generator),
        ("Model", p.model or _DASH),
        ("Same patient excluded", "yes" if p.exclude_same_patient else "no"),
        ("Only studies before", p.before_date.isoformat() if p.before_date is not None else _DASH),
        ("Knowledge-base chunks", str(p.kb_chunks)),
        ("Created", _created(report)),
        ("Schema", report.schema_version),
    ]


def _title(report: Report) -> str:
    return f"Draft echo report: study {report.study_id}"


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


def _md_sentence(sentence: Sentence, refs: _Refs) -> str:
    markers = " ".join(f"[{_md_marker(m)}]" for m in refs.markers(sentence))
    return f"- {_md(sentence.text)}" + (f" {markers}" if markers else "")


def _md_marker(marker: _Marker) -> str:
    return _md(marker.text) if marker.kind == "measurement" else marker.text


def _md_draft(row: _SectionRow, report: Report, refs: _Refs) -> list[str]:
    if row.draft is not None and row.draft.sentences:
        return [_md_sentence(s, refs) for s in row.draft.sentences]
    if row.name in report.no_evidence:
        return ["_No sentence drafted: no prior case to draw on._"]
    return ["_No sentence drafted._"]


def _md_sections(report: Report, rows: Sequence[_SectionRow], refs: _Refs, *, with_truth: bool) -> list[str]:
    out = ["## Draft and ground truth" if with_truth else "## Draft", ""]
    for row in rows:
        out += [f"### {_md(row.name)}", ""]
        if not with_truth:
            out += [*_md_draft(row, report, refs), ""]
            continue
        out += ["**Draft**", "", *_md_draft(row, report, refs), "", "**Ground truth**", ""]
        out += [f"> {_md(row.truth)}" if row.truth else "_Not in the stored report._", ""]
    return out


def _md_references(refs: _Refs) -> list[str]:
    out = ["## References", "", "_References for the reader, not diagnoses._", ""]
    if not refs.cases and not refs.kb:
        return [*out, "No prior case or knowledge-base passage is cited.", ""]
    if refs.cases:
        rows = [
            [c.label, str(c.study_id), _date(c.study_date), _md(c.section), _sim(c.similarity), str(c.rank)]
            for c in refs.cases.values()
        ]
        out += ["Prior cases (report sections of neighbour studies):", ""]
        out += [*_md_table(["Ref", "Study", "Date", "Section", "Similarity", "Rank"], rows), ""]
    if refs.kb:
        rows = [
            [k.label, _md_code(k.chunk_id, cell=True), _md(k.source), _md(k.heading) or _DASH, _score(k.score)]
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
        top = ", ".join(f"{sid} ({_sim(sim)})" for sid, sim in _top_neighbours(m)) or _DASH
        searched = f" of {m.n_searched}" if m.n_searched else ""
        value = _num(m.value) if m.value is not None else _DASH
        rows.append(
            [
                _md_code(m.name, cell=True),
                _md(m.section),
                value,
                _md(m.unit) if m.unit else _DASH,
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
            _prob(f.probability),
            _call(f),
            _prob(f.threshold),
            _grades(f),
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
    rows = _section_rows(report, truth)
    refs = _Refs.collect(report, rows)
    date = report.study_date.isoformat() if report.study_date is not None else "unknown"
    out = [
        f"# {_title(report)}",
        "",
        f"Patient {_md_code(report.patient_pseudonym)} · study date {date} · drafted {_created(report)} "
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
    out += ["## Provenance", "", *(f"- {k}: {_md(v)}" for k, v in _provenance_items(report))]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------------
# Clip thumbnails.
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Thumb:
    """A clip's middle frame as a PNG data URI, or why there is none."""

    data_uri: str | None
    reason: str = ""


@dataclass(frozen=True)
class _ClipRef:
    """A clip to show: its ID, file (relative to the media folder) and view label."""

    clip_id: int
    path: str
    view: str | None


def _frame_png(pixels: np.ndarray, size: int) -> bytes:
    """The middle frame of a clip as PNG bytes, longest side at most ``size`` pixels.

    Args:
        pixels: (T, H, W, C) uint8 with C = 1 (grayscale) or 3 (RGB), or (T, H, W) grayscale.

    Raises:
        ValueError: the array is not of that shape and dtype, or holds no frame.
    """
    from PIL import Image

    if pixels.dtype != np.uint8 or pixels.ndim not in (3, 4) or pixels.shape[0] == 0:
        raise ValueError(f"expected (T, H, W, C) uint8 frames, got {pixels.shape} {pixels.dtype}")
    frame = pixels[pixels.shape[0] // 2]
    if frame.ndim == 3:
        if frame.shape[2] == 1:
            frame = frame[..., 0]
        elif frame.shape[2] != 3:
            raise ValueError(f"expected 1 or 3 channels, got {frame.shape[2]}")
    image = Image.fromarray(np.ascontiguousarray(frame), mode="L" if frame.ndim == 2 else "RGB")
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


class _Thumbnails:
    """Reads clip files under the media folder into PNG data URIs, once per file."""

    def __init__(self, media_dir: Path | None, size: int = THUMBNAIL_PX) -> None:
        self.media_dir = media_dir.resolve() if media_dir is not None else None
        self.size = size
        self._cache: dict[str, _Thumb] = {}

    def get(self, clip_id: int, rel_path: str) -> _Thumb:
        """The thumbnail of the clip stored at ``rel_path``; never raises for a bad or missing file."""
        if rel_path not in self._cache:
            self._cache[rel_path] = self._read(clip_id, rel_path)
        return self._cache[rel_path]

    def _read(self, clip_id: int, rel_path: str) -> _Thumb:
        if self.media_dir is None:
            return _Thumb(None, "No media folder given")
        path = (self.media_dir / rel_path).resolve()
        if not path.is_relative_to(self.media_dir):
            log.warning("clip %d: path is outside the media folder; not shown", clip_id)
            return _Thumb(None, "Clip path outside the media folder")
        if not path.is_file():
            log.warning("clip %d: file missing under the media folder (%s)", clip_id, rel_path)
            return _Thumb(None, "Clip file missing")
        try:
            pixels, _meta = read_clip(path)
            png = _frame_png(pixels, self.size)
        except (DecodeError, ValueError) as e:
            log.warning("clip %d: cannot be shown (%s)", clip_id, e)
            return _Thumb(None, "Clip file unreadable")
        return _Thumb("data:image/png;base64," + base64.b64encode(png).decode("ascii"))


def _pick_by_view(clips: Sequence[_ClipRef], n: int, preferred: Sequence[str] = ()) -> list[_ClipRef]:
    """Up to ``n`` clips, one per distinct view where possible.

    Views in ``preferred`` come first (in that order), then the other labelled views in clip order,
    then further clips (unlabelled ones, or more of a view already shown) to fill the ``n`` places.
    """
    by_view: dict[str, _ClipRef] = {}
    for clip in clips:
        if clip.view is not None:
            by_view.setdefault(clip.view, clip)
    views = list(dict.fromkeys([*(v for v in preferred if v in by_view), *by_view]))
    picked = [by_view[v] for v in views][:n]
    chosen = {c.clip_id for c in picked}
    picked += [c for c in clips if c.clip_id not in chosen][: n - len(picked)]
    return picked


def _study_row(report: Report) -> list[_ClipRef]:
    """This study's clips for the comparison row: the most confident clip of each predicted view."""
    ranked = sorted(report.clips, key=lambda c: -(c.view_probability or 0.0))
    refs = [_ClipRef(c.clip_id, c.path, c.view or c.stored_view) for c in ranked]
    return _pick_by_view(refs, NEIGHBOUR_THUMBNAILS)


def _neighbour_clips(store: Store, study_ids: Sequence[int]) -> dict[int, list[_ClipRef]]:
    """The stored clips of each study in ``study_ids``, in clip ID order."""
    from sqlalchemy import select

    from rag.store import Clip, Series

    found: dict[int, list[_ClipRef]] = {sid: [] for sid in study_ids}
    if not study_ids:
        return found
    stmt = (
        select(Series.study_id, Clip.id, Clip.path, Clip.view_label)
        .join(Clip.series)
        .where(Series.study_id.in_(list(study_ids)))
        .order_by(Series.study_id, Clip.id)
    )
    with store.session() as s:
        for study_id, clip_id, path, view in s.execute(stmt):
            found[study_id].append(_ClipRef(clip_id, path, view))
    return found


# --------------------------------------------------------------------------------------------------
# HTML.
# --------------------------------------------------------------------------------------------------

_CSS = """
:root { --ink: #1d232b; --muted: #5b6673; --line: #d9dee4; --soft: #f4f6f8; --accent: #1f5f9e;
  --warn-bg: #fff6db; --warn-line: #e0b400; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
  margin: 0 auto; padding: 1.5rem; max-width: 1200px; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .75rem; border-bottom: 1px solid var(--line); padding-bottom: .25rem; }
h3 { font-size: 1rem; margin: 0 0 .5rem; }
.meta, .note, .muted { color: var(--muted); }
code { font-size: .9em; background: var(--soft); padding: 0 .25em; border-radius: 3px; }
.banner { background: var(--warn-bg); border-left: 5px solid var(--warn-line); padding: .75rem 1rem;
  margin: 1rem 0; }
.strip { display: flex; flex-wrap: wrap; gap: .75rem; }
figure { margin: 0; width: 136px; }
figure img, .placeholder { width: 128px; height: 128px; display: block; background: #000;
  object-fit: contain; border-radius: 4px; }
.placeholder { background: var(--soft); border: 2px dashed var(--line); color: var(--muted);
  font-size: .8rem; display: flex; align-items: center; justify-content: center; text-align: center;
  padding: .5rem; }
figcaption { font-size: .8rem; line-height: 1.3; margin-top: .25rem; overflow-wrap: anywhere; }
.sec { border: 1px solid var(--line); border-radius: 6px; padding: .75rem 1rem; margin: 0 0 .75rem; }
.cols { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 1.3fr); gap: 1rem; }
.cols.truth { grid-template-columns: minmax(0, 2.5fr) minmax(0, 2.5fr) minmax(0, 1.3fr); }
.col-label { font-size: .75rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted);
  margin: 0 0 .25rem; }
.draft p, .truth-text p { margin: 0 0 .4rem; }
.truth-text { background: var(--soft); border-radius: 4px; padding: .25rem .5rem; }
a.ev, span.ev { font-size: .75rem; text-decoration: none; border-radius: 3px; padding: 0 .3em;
  white-space: nowrap; border: 1px solid var(--line); color: var(--accent); }
.ev.kb { color: #6b3fa0; }
.ev.measurement { color: #2d7a3e; }
aside.sources ul { list-style: none; padding: 0; margin: 0; font-size: .85rem; }
aside.sources li { margin-bottom: .25rem; }
.neighbour { display: grid; grid-template-columns: 220px minmax(0, 1fr); gap: 1rem;
  border-top: 1px solid var(--line); padding: .75rem 0; }
.neighbour.this { background: var(--soft); border-radius: 6px; padding: .75rem; border-top: none; }
.sim { font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { border-bottom: 1px solid var(--line); padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: var(--soft); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
footer { margin-top: 2rem; color: var(--muted); font-size: .85rem; }
footer dl { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; }
footer dt { font-weight: 600; }
footer dd { margin: 0; }
@media print { .banner { border: 1px solid var(--warn-line); } a.ev { color: inherit; } }
"""


def _e(text: object) -> str:
    """``text`` HTML-escaped for element content and quoted attribute values."""
    return html.escape(str(text), quote=True)


def _html_marker(marker: _Marker) -> str:
    cls = f"ev {marker.kind}"
    if marker.anchor is None:
        return f'<span class="{cls}" title="{_e(marker.title)}">{_e(marker.text)}</span>'
    return f'<a class="{cls}" href="#{marker.anchor}" title="{_e(marker.title)}">{_e(marker.text)}</a>'


def _html_figure(thumb: _Thumb, clip_id: int, lines: Sequence[str]) -> str:
    caption = "<br>".join(_e(line) for line in lines)
    if thumb.data_uri is not None:
        alt = _e(f"clip {clip_id}, middle frame")
        image = f'<img src="{thumb.data_uri}" alt="{alt}">'
    else:
        image = f'<div class="placeholder" role="img" aria-label="{_e(thumb.reason)}">{_e(thumb.reason)}</div>'
    return f'<figure class="clip" data-clip="{clip_id}">{image}<figcaption>{caption}</figcaption></figure>'


def _clip_caption(clip: ClipSummary) -> list[str]:
    view = clip.view or "view unknown"
    prob = f" {clip.view_probability:.2f}" if clip.view_probability is not None else ""
    lines = [f"{view}{prob}"]
    if clip.stored_view is not None and clip.stored_view != clip.view:
        lines.append(f"stored: {clip.stored_view}")
    lines.append(f"clip {clip.clip_id}")
    return lines


def _html_clips(report: Report, thumbs: _Thumbnails) -> list[str]:
    out = ['<section id="clips">', "<h2>Clips of this study</h2>"]
    if not report.clips:
        return [*out, '<p class="muted">No clip listed for this study.</p>', "</section>"]
    figures = [_html_figure(thumbs.get(c.clip_id, c.path), c.clip_id, _clip_caption(c)) for c in report.clips]
    return [*out, '<div class="strip">', *figures, "</div>", "</section>"]


def _html_draft(row: _SectionRow, report: Report, refs: _Refs) -> str:
    if row.draft is not None and row.draft.sentences:
        sentences = []
        for s in row.draft.sentences:
            markers = "".join(f" {_html_marker(m)}" for m in refs.markers(s))
            sentences.append(f"<p>{_e(s.text)}{markers}</p>")
        return "".join(sentences)
    if row.name in report.no_evidence:
        return '<p class="muted">No sentence drafted: no prior case to draw on.</p>'
    return '<p class="muted">No sentence drafted.</p>'


def _html_sources(row: _SectionRow, refs: _Refs, neighbour_ids: set[int]) -> str:
    cases = refs.section_cases(row.draft)
    if not cases:
        return '<aside class="sources"><p class="col-label">Supplied by</p><p class="muted">No prior case.</p></aside>'
    items = []
    for c in cases:
        study = (
            f'<a href="#nb-{c.study_id}">study {c.study_id}</a>'
            if c.study_id in neighbour_ids
            else (f"study {c.study_id}")
        )
        items.append(
            f'<li><a href="#{c.anchor}">{c.label}</a> {study}, {_e(_date(c.study_date))}, '
            f'similarity <span class="sim">{_sim(c.similarity)}</span></li>'
        )
    return f'<aside class="sources"><p class="col-label">Supplied by</p><ul>{"".join(items)}</ul></aside>'


def _html_sections(report: Report, rows: Sequence[_SectionRow], refs: _Refs, *, with_truth: bool) -> list[str]:
    neighbour_ids = {n.study_id for n in report.neighbours}
    out = ['<section id="draft">', f"<h2>{'Draft and ground truth' if with_truth else 'Draft'}</h2>"]
    for i, row in enumerate(rows, start=1):
        cols = [f'<div class="draft"><p class="col-label">Draft</p>{_html_draft(row, report, refs)}</div>']
        if with_truth:
            text = f"<p>{_e(row.truth)}</p>" if row.truth else '<p class="muted">Not in the stored report.</p>'
            cols.append(f'<div class="truth-text"><p class="col-label">Ground truth</p>{text}</div>')
        cols.append(_html_sources(row, refs, neighbour_ids))
        grid = "cols truth" if with_truth else "cols"
        body = f'<h3>{_e(row.name)}</h3><div class="{grid}">{"".join(cols)}</div>'
        out.append(f'<section class="sec" id="sec-{i}">{body}</section>')
    return [*out, "</section>"]


def _html_neighbour_row(
    css: str, label: str, details: Sequence[str], clips: Sequence[_ClipRef], thumbs: _Thumbnails | None, anchor: str
) -> str:
    """One row of the neighbour panel; ``label`` and ``details`` are HTML (escaped by the caller).

    Without ``thumbs`` the row has no image column (no store or no media folder was given).
    """
    info = "".join(f'<p class="muted">{d}</p>' for d in details)
    head = f"<div><h3>{label}</h3>{info}</div>"
    if thumbs is None:
        strip = ""
    elif not clips:
        strip = '<p class="muted">No clip stored for this study.</p>'
    else:
        figures = [
            _html_figure(thumbs.get(c.clip_id, c.path), c.clip_id, [c.view or "view unknown", f"clip {c.clip_id}"])
            for c in clips
        ]
        strip = f'<div class="strip">{"".join(figures)}</div>'
    id_attr = f' id="{anchor}"' if anchor else ""
    return f'<article class="{css}"{id_attr}>{head}<div>{strip}</div></article>'


def _html_neighbours(report: Report, thumbs: _Thumbnails, store: Store | None) -> list[str]:
    out = [
        '<section id="neighbours">',
        "<h2>Neighbour cases</h2>",
        '<p class="note">Prior studies whose report sections supplied the draft: references, not diagnoses.</p>',
    ]
    if not report.neighbours:
        return [*out, '<p class="muted">No neighbour case.</p>', "</section>"]
    with_images = store is not None and thumbs.media_dir is not None
    stored = _neighbour_clips(store, [n.study_id for n in report.neighbours]) if store is not None else {}
    this_row = _study_row(report)
    if with_images:
        date = _date(report.study_date)
        out.append(
            _html_neighbour_row(
                "neighbour this", f"This study ({report.study_id})", [_e(date)], this_row, thumbs, anchor=""
            )
        )
    preferred = [c.view for c in this_row if c.view is not None]
    for n in sorted(report.neighbours, key=lambda nb: -nb.similarity):
        details = [
            f'similarity <span class="sim">{_sim(n.similarity)}</span> · {_e(_date(n.study_date))}',
            f"patient <code>{_e(n.patient_pseudonym)}</code>",
            f"sections: {_e(', '.join(n.sections)) if n.sections else _DASH}",
        ]
        clips = _pick_by_view(stored.get(n.study_id, []), NEIGHBOUR_THUMBNAILS, preferred)
        out.append(
            _html_neighbour_row(
                "neighbour",
                f"Study {n.study_id}",
                details,
                clips,
                thumbs if with_images else None,
                anchor=f"nb-{n.study_id}",
            )
        )
    return [*out, "</section>"]


def _html_table(header: Sequence[str], rows: Iterable[Sequence[str]], numeric: frozenset[int]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _html_measurements(report: Report) -> list[str]:
    if not report.measurements:
        return []
    anchors = _measurement_anchors(report.measurements)
    rows = []
    for i, m in enumerate(report.measurements, start=1):
        top = ", ".join(f"{sid} ({_sim(sim)})" for sid, sim in _top_neighbours(m)) or _DASH
        searched = f" of {m.n_searched}" if m.n_searched else ""
        name = f"<code>{_e(m.name)}</code>"
        if anchors.get(m.name) == f"meas-{i}":
            name = f'<span id="meas-{i}">{name}</span>'
        rows.append(
            [
                name,
                _e(m.section),
                _e(_num(m.value)) if m.value is not None else _DASH,
                _e(m.unit) if m.unit else _DASH,
                f"{len(m.neighbours)}{searched}",
                _e(top),
                _e(m.note or ""),
            ]
        )
    header = ["Measurement", "Section", "Value", "Unit", "Neighbours", "Top neighbours: study (similarity)", "Note"]
    return [
        '<section id="measurements">',
        "<h2>Measurements</h2>",
        '<p class="note">Similarity-weighted vote of the neighbour studies.</p>',
        _html_table(header, rows, frozenset({2, 4})),
        "</section>",
    ]


def _html_findings(report: Report) -> list[str]:
    if not report.findings:
        return []
    rows = [
        [
            f"<code>{_e(f.name)}</code>",
            _e(f.section),
            _prob(f.probability),
            _call(f),
            _prob(f.threshold),
            _grades(f),
            str(len(f.neighbours)),
            _e(f.note or ""),
        ]
        for f in report.findings
    ]
    header = ["Finding", "Section", "Probability", "Call", "Threshold", "Grades 0/1/2/3", "Neighbours", "Note"]
    return [
        '<section id="findings">',
        "<h2>Findings</h2>",
        _html_table(header, rows, frozenset({2, 4, 6})),
        "</section>",
    ]


def _html_references(refs: _Refs) -> list[str]:
    out = [
        '<section id="references">',
        "<h2>References</h2>",
        '<p class="note">References for the reader, not diagnoses.</p>',
    ]
    if not refs.cases and not refs.kb:
        return [*out, '<p class="muted">No prior case or knowledge-base passage is cited.</p>', "</section>"]
    if refs.cases:
        items = [
            f'<li id="{c.anchor}"><strong>{c.label}</strong> study {c.study_id}, {_e(_date(c.study_date))}, '
            f"{_e(c.section)} (report section {c.report_section_id}), similarity "
            f'<span class="sim">{_sim(c.similarity)}</span>, rank {c.rank}</li>'
            for c in refs.cases.values()
        ]
        out += ["<h3>Prior cases</h3>", f"<ul>{''.join(items)}</ul>"]
    if refs.kb:
        items = [
            f'<li id="{k.anchor}"><strong>{k.label}</strong> <code>{_e(k.chunk_id)}</code> {_e(k.source)}'
            + (f", {_e(k.heading)}" if k.heading else "")
            + f' (score <span class="sim">{_score(k.score)}</span>)</li>'
            for k in refs.kb.values()
        ]
        out += ["<h3>Knowledge-base passages</h3>", f"<ul>{''.join(items)}</ul>"]
    return [*out, "</section>"]


def _html_list(anchor: str, title: str, items: Sequence[str]) -> list[str]:
    if not items:
        return []
    lis = "".join(f"<li>{_e(item)}</li>" for item in items)
    return [f'<section id="{anchor}">', f"<h2>{_e(title)}</h2>", f"<ul>{lis}</ul>", "</section>"]


def render_html(
    report: Report,
    *,
    media_dir: Path | None = None,
    store: Store | None = None,
    ground_truth: str | None = None,
) -> str:
    """The report as one self-contained HTML page (inline CSS, PNG data URIs, no script, no URL).

    Args:
        report: the drafted report.
        media_dir: the workspace's media folder; clip thumbnails (the middle frame, longest side
            :data:`THUMBNAIL_PX`) are read from ``media_dir / clip.path``. Without it, placeholders.
        store: the case store; with ``media_dir`` as well, each neighbour study shows up to
            :data:`NEIGHBOUR_THUMBNAILS` of its clips (one per view where possible, the views of this
            study first) beside a row of this study's clips.
        ground_truth: the study's own stored report text, shown beside the draft section by section.

    Returns:
        The page. All report text is HTML-escaped; a missing or unreadable clip file becomes a
        placeholder box naming the problem.
    """
    truth = parse_echo_report(ground_truth) if ground_truth is not None else None
    rows = _section_rows(report, truth)
    refs = _Refs.collect(report, rows)
    thumbs = _Thumbnails(media_dir)
    date = report.study_date.isoformat() if report.study_date is not None else "unknown"
    meta = (
        f"Patient <code>{_e(report.patient_pseudonym)}</code> · study date {_e(date)} · drafted "
        f"{_e(_created(report))} by <code>{_e(report.provenance.generator)}</code>"
    )
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(_title(report))}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f'<header><h1>{_e(_title(report))}</h1><p class="meta">{meta}</p></header>',
        f'<div class="banner" role="note"><strong>Not a diagnosis.</strong> {_e(BANNER)}</div>',
    ]
    out += _html_clips(report, thumbs)
    out += _html_sections(report, rows, refs, with_truth=truth is not None)
    out += _html_neighbours(report, thumbs, store)
    out += _html_measurements(report)
    out += _html_findings(report)
    out += _html_references(refs)
    out += _html_list("no-evidence", "Sections without evidence", report.no_evidence)
    out += _html_list("dropped", "Left out of the prompt", report.dropped_context)
    out += _html_list("warnings", "Warnings", report.warnings)
    provenance = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in _provenance_items(report))
    out += [f'<footer id="provenance"><h2>Provenance</h2><dl>{provenance}</dl></footer>', "</body>", "</html>"]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------------
# Writing.
# --------------------------------------------------------------------------------------------------


def _format_for(path: Path, fmt: str | None) -> Format:
    allowed = ", ".join(FORMATS)
    if fmt is not None:
        key = fmt.lower().lstrip(".")
        if key == "markdown":
            key = "md"
        for f in FORMATS:
            if f == key:
                return f
        raise RenderError(f"Unknown report format {fmt!r}. Allowed: {allowed}.")
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        suffixes = ", ".join(_SUFFIXES)
        raise RenderError(
            f"Cannot tell the report format of '{path}' from its suffix {path.suffix!r}. Allowed formats: "
            f"{allowed} (suffixes {suffixes}); use one of those suffixes or pass fmt."
        )
    return found


def write_report(
    report: Report,
    path: Path,
    *,
    fmt: str | None = None,
    media_dir: Path | None = None,
    store: Store | None = None,
    ground_truth: str | None = None,
) -> Path:
    """Write the report to ``path`` as Markdown, JSON or HTML, atomically.

    Args:
        report: the drafted report.
        path: where to write; the folder is created if needed.
        fmt: ``"md"``, ``"json"`` or ``"html"``; by default taken from the suffix of ``path``
            (``.md``/``.markdown``, ``.json``, ``.html``/``.htm``).
        media_dir, store, ground_truth: as for :func:`render_html` (``ground_truth`` also for Markdown);
            JSON is always the report alone (:meth:`Report.to_json`).

    Returns:
        ``path``.

    Raises:
        RenderError: the format is unknown or cannot be told from the suffix.
    """
    path = Path(path)
    kind = _format_for(path, fmt)
    if kind == "json":
        text = report.to_json()
    elif kind == "md":
        text = render_markdown(report, ground_truth=ground_truth)
    else:
        text = render_html(report, media_dir=media_dir, store=store, ground_truth=ground_truth)
    write_atomic(path, text.encode("utf-8"))
    log.info("report of study %d written as %s", report.study_id, kind)
    return path
