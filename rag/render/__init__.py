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

from typing import TYPE_CHECKING

from rag.core.lazy import lazy_exports

if TYPE_CHECKING:
    from rag.render.html import render_html
    from rag.render.markdown import render_markdown
    from rag.render.references import BANNER, NEIGHBOUR_THUMBNAILS, THUMBNAIL_PX, RenderError
    from rag.render.write import FORMATS, Format, write_report

_LAZY: dict[str, str] = {
    "BANNER": "rag.render.references",
    "NEIGHBOUR_THUMBNAILS": "rag.render.references",
    "THUMBNAIL_PX": "rag.render.references",
    "RenderError": "rag.render.references",
    "render_markdown": "rag.render.markdown",
    "render_html": "rag.render.html",
    "FORMATS": "rag.render.write",
    "Format": "rag.render.write",
    "write_report": "rag.render.write",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())

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
