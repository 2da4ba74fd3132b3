"""Writing a drafted report to a file as Markdown, JSON or HTML, chosen by suffix or by name."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rag.core.clipfile import write_atomic
from rag.generate.report import (
    Report,
)
from rag.render.html import render_html
from rag.render.markdown import render_markdown
from rag.render.references import RenderError

if TYPE_CHECKING:
    from rag.store import Store

log = logging.getLogger(__name__)

Format = Literal["md", "json", "html"]
FORMATS: tuple[Format, ...] = ("md", "json", "html")
_SUFFIXES: dict[str, Format] = {".md": "md", ".markdown": "md", ".json": "json", ".html": "html", ".htm": "html"}

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
