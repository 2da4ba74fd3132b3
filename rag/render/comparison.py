"""A comparison as Markdown, JSON or a self-contained HTML page: the narrative with its citations, the
measurement deltas and finding calls (changes highlighted), prior and current frames side by side per
view, the change pairs with their own comparison lines, and the numbered evidence."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from rag.compare.narrative import GRADE_WORDS
from rag.compare.result import Comparison, Statement
from rag.core.clipfile import write_atomic
from rag.render.references import RenderError
from rag.render.thumbnails import Thumbnails

__all__ = ["comparison_html", "comparison_markdown", "write_comparison"]

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}
tr.changed td{background:#fff3cd;font-weight:600}.num{text-align:right}
.pair{display:flex;gap:1em;margin:.5em 0 1.5em}.pair figure{margin:0}.pair img{max-width:260px;border:1px solid #999}
.note{color:#666;font-size:.9em}.cite{font-size:.8em;vertical-align:super}.warn{color:#8a4b00}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _cites(numbers: Sequence[int], link: bool) -> str:
    if not numbers:
        return ""
    if link:
        return "<span class='cite'>[" + ", ".join(f"<a href='#ev-{n}'>{n}</a>" for n in numbers) + "]</span>"
    return " [" + ", ".join(str(n) for n in numbers) + "]"


def _statement(s: Statement, link: bool) -> str:
    """The sentence with its citations before its full stop."""
    text = _e(s.text) if link else s.text
    body, stop = (text[:-1], ".") if text.endswith(".") else (text, "")
    return body + _cites(s.evidence, link) + stop


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def comparison_markdown(c: Comparison, *, reference: str | None = None) -> str:
    """The comparison as Markdown."""
    lines = [f"# Comparison of study {c.current_study_id}", ""]
    if c.status == "no prior":
        return "\n".join([*lines, " ".join(_statement(s, False) for s in c.statements), ""])
    lines += [" ".join(_statement(s, False) for s in c.statements), ""]
    if reference:
        lines += [f"Report's own comparison line: {reference}", ""]
    lines += ["| measurement | prior | current | change | +/- | call |", "|---|---:|---:|---:|---:|---|"]
    for m in c.measurements:
        lines.append(
            f"| {m.name} ({m.unit or ''}) | {_fmt(m.prior)} ({m.prior_source}) | {_fmt(m.current)} | "
            f"{_fmt(m.delta)} | {_fmt(m.spread)} | {m.call or '-'} |"
        )
    lines += ["", "| finding | prior | current | call | score | threshold |", "|---|---|---|---|---:|---:|"]
    for f in c.findings:
        lines.append(
            f"| {f.name} | {GRADE_WORDS[f.prior_grade]} ({f.prior_source}) | {GRADE_WORDS[f.current_grade]} | "
            f"{f.call} | {f.score:.2f} | {_fmt(f.threshold, 2)} |"
        )
    lines += ["", "## Evidence", ""]
    lines += [
        f"{e.number}. {e.kind} study {e.study_id} {e.role} {e.section or ''} "
        f"{'' if e.similarity is None else f'(similarity {e.similarity:.3f})'}".rstrip()
        for e in c.evidence
    ]
    texts = {p.evidence: p.comparison_text for p in c.change_pairs}
    if any(texts.values()):
        lines += ["", "## Change pairs' own comparison lines", ""]
        lines += [f"- [{n}] {t}" for n, t in texts.items() if t]
    lines += [f"\nWarning: {w}" for w in c.warnings]
    return "\n".join(lines) + "\n"


def comparison_html(c: Comparison, *, media_dir: Path | None = None, reference: str | None = None) -> str:
    """The comparison as one HTML page (frames embedded as PNG data URIs)."""
    title = f"Comparison of study {c.current_study_id}" + (
        f" with study {c.prior_study_id}" if c.prior_study_id is not None else ""
    )
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"]
    out += [f"<style>{_CSS}</style></head><body>", f"<h1>{_e(title)}</h1>"]
    out.append("<p>" + " ".join(_statement(s, True) for s in c.statements) + "</p>")
    if reference:
        out.append(f"<p class='note'>The report's own comparison line: {_e(reference)}</p>")
    out += [f"<p class='warn'>{_e(w)}</p>" for w in c.warnings]
    if c.status == "no prior":
        return "\n".join([*out, "</body></html>"])
    out.append("<h2>Measurements</h2><table><tr><th>measurement</th><th>prior</th><th>current</th>")
    out.append("<th>change</th><th>+/-</th><th>call</th><th>evidence</th></tr>")
    for m in c.measurements:
        cls = " class='changed'" if m.call in ("increased", "decreased") else ""
        out.append(
            f"<tr{cls}><td>{_e(m.name)} ({_e(m.unit or '')})</td><td class='num'>{_fmt(m.prior)} "
            f"<span class='note'>{_e(m.prior_source or '')}</span></td><td class='num'>{_fmt(m.current)}</td>"
            f"<td class='num'>{_fmt(m.delta)}</td><td class='num'>{_fmt(m.spread)}</td><td>{_e(m.call or '-')}</td>"
            f"<td>{_cites(m.evidence, True)}</td></tr>"
        )
    out.append("</table><h2>Findings</h2><table><tr><th>finding</th><th>prior</th><th>current</th><th>call</th>")
    out.append("<th>score</th><th>threshold</th></tr>")
    for f in c.findings:
        cls = " class='changed'" if f.call != "unchanged" else ""
        out.append(
            f"<tr{cls}><td>{_e(f.name)}</td><td>{GRADE_WORDS[f.prior_grade]} <span class='note'>{f.prior_source}"
            f"</span></td><td>{GRADE_WORDS[f.current_grade]}</td><td>{_e(f.call)}</td>"
            f"<td class='num'>{f.score:.2f}</td><td class='num'>{_fmt(f.threshold, 2)}</td></tr>"
        )
    out.append("</table><h2>Prior and current, view by view</h2>")
    thumbs = Thumbnails(media_dir)
    for v in c.views:
        figures = []
        for label, clip in (
            (f"prior (study {c.prior_study_id})", v.prior),
            (f"current (study {c.current_study_id})", v.current),
        ):
            thumb = thumbs.get(clip.clip_id, clip.path)
            img = f"<img src='{thumb.data_uri}' alt='{_e(v.view)} {label}'>" if thumb.data_uri else _e(thumb.reason)
            figures.append(
                f"<figure>{img}<figcaption>{_e(v.view)}: {_e(label)}, clip {clip.clip_id}</figcaption></figure>"
            )
        out.append("<div class='pair'>" + "".join(figures) + "</div>")
    out.append("<h2>Evidence</h2><ol>")
    texts = {p.evidence: p.comparison_text for p in c.change_pairs}
    for e in c.evidence:
        sim = "" if e.similarity is None else f" (similarity {e.similarity:.3f})"
        said = f"<br><span class='note'>{_e(texts[e.number])}</span>" if texts.get(e.number) else ""
        out.append(
            f"<li id='ev-{e.number}' value='{e.number}'>{_e(e.kind)}: study {e.study_id} {_e(e.role)} "
            f"{_e(e.section or '')}{sim}{said}</li>"
        )
    out.append("</ol></body></html>")
    return "\n".join(out)


def write_comparison(c: Comparison, path: Path, *, media_dir: Path | None = None, reference: str | None = None) -> Path:
    """Write ``c`` as Markdown (.md), JSON (.json) or HTML (.html), atomically."""
    suffix = path.suffix.lower()
    if suffix in (".md", ".markdown"):
        text = comparison_markdown(c, reference=reference)
    elif suffix == ".json":
        text = c.to_json()
    elif suffix in (".html", ".htm"):
        text = comparison_html(c, media_dir=media_dir, reference=reference)
    else:
        raise RenderError(f"cannot tell the format of '{path}' from its suffix: use .md, .json or .html")
    write_atomic(path, text.encode("utf-8"))
    return path
