"""A drafted report as one self-contained HTML page: inline CSS, base64 thumbnails, no script."""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rag.generate.report import (
    ClipSummary,
    Report,
)
from rag.ingest.sections import parse_echo_report
from rag.render.references import (
    BANNER,
    DASH,
    NEIGHBOUR_THUMBNAILS,
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
    measurement_anchors,
    provenance_items,
    section_rows,
    title,
    top_neighbours,
)
from rag.render.thumbnails import ClipRef, Thumb, Thumbnails, neighbour_clips, pick_by_view, study_row

if TYPE_CHECKING:
    from rag.store import Store

log = logging.getLogger(__name__)

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


def _html_marker(marker: Marker) -> str:
    cls = f"ev {marker.kind}"
    if marker.anchor is None:
        return f'<span class="{cls}" title="{_e(marker.title)}">{_e(marker.text)}</span>'
    return f'<a class="{cls}" href="#{marker.anchor}" title="{_e(marker.title)}">{_e(marker.text)}</a>'


def _html_figure(thumb: Thumb, clip_id: int, lines: Sequence[str]) -> str:
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


def _html_clips(report: Report, thumbs: Thumbnails) -> list[str]:
    out = ['<section id="clips">', "<h2>Clips of this study</h2>"]
    if not report.clips:
        return [*out, '<p class="muted">No clip listed for this study.</p>', "</section>"]
    figures = [_html_figure(thumbs.get(c.clip_id, c.path), c.clip_id, _clip_caption(c)) for c in report.clips]
    return [*out, '<div class="strip">', *figures, "</div>", "</section>"]


def _html_draft(row: SectionRow, report: Report, refs: Refs) -> str:
    if row.draft is not None and row.draft.sentences:
        sentences = []
        for s in row.draft.sentences:
            markers = "".join(f" {_html_marker(m)}" for m in refs.markers(s))
            sentences.append(f"<p>{_e(s.text)}{markers}</p>")
        return "".join(sentences)
    if row.name in report.no_evidence:
        return '<p class="muted">No sentence drafted: no prior case to draw on.</p>'
    return '<p class="muted">No sentence drafted.</p>'


def _html_sources(row: SectionRow, refs: Refs, neighbour_ids: set[int]) -> str:
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
            f'<li><a href="#{c.anchor}">{c.label}</a> {study}, {_e(fmt_date(c.study_date))}, '
            f'similarity <span class="sim">{fmt_sim(c.similarity)}</span></li>'
        )
    return f'<aside class="sources"><p class="col-label">Supplied by</p><ul>{"".join(items)}</ul></aside>'


def _html_sections(report: Report, rows: Sequence[SectionRow], refs: Refs, *, with_truth: bool) -> list[str]:
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
    css: str, label: str, details: Sequence[str], clips: Sequence[ClipRef], thumbs: Thumbnails | None, anchor: str
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


def _html_neighbours(report: Report, thumbs: Thumbnails, store: Store | None) -> list[str]:
    out = [
        '<section id="neighbours">',
        "<h2>Neighbour cases</h2>",
        '<p class="note">Prior studies whose report sections supplied the draft: references, not diagnoses.</p>',
    ]
    if not report.neighbours:
        return [*out, '<p class="muted">No neighbour case.</p>', "</section>"]
    with_images = store is not None and thumbs.media_dir is not None
    stored = neighbour_clips(store, [n.study_id for n in report.neighbours]) if store is not None else {}
    this_row = study_row(report)
    if with_images:
        date = fmt_date(report.study_date)
        out.append(
            _html_neighbour_row(
                "neighbour this", f"This study ({report.study_id})", [_e(date)], this_row, thumbs, anchor=""
            )
        )
    preferred = [c.view for c in this_row if c.view is not None]
    for n in sorted(report.neighbours, key=lambda nb: -nb.similarity):
        details = [
            f'similarity <span class="sim">{fmt_sim(n.similarity)}</span> · {_e(fmt_date(n.study_date))}',
            f"patient <code>{_e(n.patient_pseudonym)}</code>",
            f"sections: {_e(', '.join(n.sections)) if n.sections else DASH}",
        ]
        clips = pick_by_view(stored.get(n.study_id, []), NEIGHBOUR_THUMBNAILS, preferred)
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
    anchors = measurement_anchors(report.measurements)
    rows = []
    for i, m in enumerate(report.measurements, start=1):
        top = ", ".join(f"{sid} ({fmt_sim(sim)})" for sid, sim in top_neighbours(m)) or DASH
        searched = f" of {m.n_searched}" if m.n_searched else ""
        name = f"<code>{_e(m.name)}</code>"
        if anchors.get(m.name) == f"meas-{i}":
            name = f'<span id="meas-{i}">{name}</span>'
        rows.append(
            [
                name,
                _e(m.section),
                _e(fmt_num(m.value)) if m.value is not None else DASH,
                _e(m.unit) if m.unit else DASH,
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
            fmt_prob(f.probability),
            finding_call(f),
            fmt_prob(f.threshold),
            finding_grades(f),
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


def _html_references(refs: Refs) -> list[str]:
    out = [
        '<section id="references">',
        "<h2>References</h2>",
        '<p class="note">References for the reader, not diagnoses.</p>',
    ]
    if not refs.cases and not refs.kb:
        return [*out, '<p class="muted">No prior case or knowledge-base passage is cited.</p>', "</section>"]
    if refs.cases:
        items = [
            f'<li id="{c.anchor}"><strong>{c.label}</strong> study {c.study_id}, {_e(fmt_date(c.study_date))}, '
            f"{_e(c.section)} (report section {c.report_section_id}), similarity "
            f'<span class="sim">{fmt_sim(c.similarity)}</span>, rank {c.rank}</li>'
            for c in refs.cases.values()
        ]
        out += ["<h3>Prior cases</h3>", f"<ul>{''.join(items)}</ul>"]
    if refs.kb:
        items = [
            f'<li id="{k.anchor}"><strong>{k.label}</strong> <code>{_e(k.chunk_id)}</code> {_e(k.source)}'
            + (f", {_e(k.heading)}" if k.heading else "")
            + f' (score <span class="sim">{fmt_score(k.score)}</span>)</li>'
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
    rows = section_rows(report, truth)
    refs = Refs.collect(report, rows)
    thumbs = Thumbnails(media_dir)
    date = report.study_date.isoformat() if report.study_date is not None else "unknown"
    meta = (
        f"Patient <code>{_e(report.patient_pseudonym)}</code> · study date {_e(date)} · drafted "
        f"{_e(created(report))} by <code>{_e(report.provenance.generator)}</code>"
    )
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title(report))}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f'<header><h1>{_e(title(report))}</h1><p class="meta">{meta}</p></header>',
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
    provenance = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in provenance_items(report))
    out += [f'<footer id="provenance"><h2>Provenance</h2><dl>{provenance}</dl></footer>', "</body>", "</html>"]
    return "\n".join(out) + "\n"
