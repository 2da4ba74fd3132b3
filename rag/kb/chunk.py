"""Chunking: Markdown and plain-text documents become passages that keep their heading path.

A Markdown document is cut at its headings (ATX ``#`` headings and one-line setext headings); each
section's body is a run of blocks — paragraphs, lists, tables, fenced code — and the blocks are packed
into chunks of at most ``max_chars`` characters. A block that does not fit alone is split where it
reads naturally: a paragraph between sentences, a list between items, a table between rows (each
piece repeats the header rows), code between lines; only a sentence longer than ``max_chars`` is cut,
and then between words. A table up to twice ``max_chars`` stays whole in a chunk of its own.

Every chunk keeps its heading path (``"Left ventricle > Systolic function"``); a plain-text document
has paragraphs only, under the empty heading. Chunk IDs are ``<source>#<n>`` (``n`` from 1 in reading
order), so the same document under the same source name always gives the same IDs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

__all__ = [
    "DEFAULT_MAX_CHARS",
    "HEADING_SEPARATOR",
    "MIN_MAX_CHARS",
    "DocumentKind",
    "KBChunk",
    "chunk_document",
    "document_kind",
]

DEFAULT_MAX_CHARS = 800
"""Default upper bound of a chunk's text length, in characters."""

MIN_MAX_CHARS = 100
"""Smallest ``max_chars`` accepted: below it, sentences would be cut routinely."""

HEADING_SEPARATOR = " > "
"""Joins the headings of a chunk's path."""

DocumentKind = Literal["markdown", "text"]

_SUFFIX_KINDS: dict[str, DocumentKind] = {".md": "markdown", ".markdown": "markdown", ".txt": "text"}

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_THEMATIC_BREAK = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_LIST_ITEM = re.compile(r"^\s{0,3}(?:[-*+]|\d{1,9}[.)])\s+")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s+")
_LAST_WORD = re.compile(r"\S+$")
_ABBREVIATIONS = frozenset(
    {"al", "e.g", "i.e", "vs", "cf", "fig", "figs", "approx", "dr", "mr", "mrs", "ms", "no", "eq", "ref", "vol", "ca"}
)

BlockKind = Literal["paragraph", "list", "table", "code"]


@dataclass(frozen=True)
class KBChunk:
    """One passage of a knowledge-base document.

    Attributes:
        chunk_id: ``<source>#<n>``, stable while the document and the chunking parameters are unchanged.
        source: the document's name in the knowledge base (a relative path such as ``starter/pericardium.md``).
        heading: the heading path, headings joined by ``" > "``; ``""`` before the first heading and in
            plain-text documents.
        text: the passage, Markdown kept as written (tables stay tables).
    """

    chunk_id: str
    source: str
    heading: str
    text: str

    @property
    def indexed_text(self) -> str:
        """What the dense and keyword indexes see: the heading path, a line break, then the text."""
        return f"{self.heading}\n{self.text}" if self.heading else self.text


@dataclass(frozen=True)
class _Block:
    kind: BlockKind
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def document_kind(source: str) -> DocumentKind | None:
    """``"markdown"`` for ``.md``/``.markdown``, ``"text"`` for ``.txt`` (any case); None for other names."""
    return _SUFFIX_KINDS.get(PurePosixPath(source).suffix.lower())


def chunk_document(
    text: str,
    source: str,
    *,
    kind: DocumentKind | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> list[KBChunk]:
    """Split a document into chunks that keep their heading path.

    Args:
        text: the whole document (any line endings).
        source: the document's name in the knowledge base; it prefixes the chunk IDs.
        kind: ``"markdown"`` or ``"text"``; default from the suffix of ``source`` (Markdown when unknown).
        max_chars: upper bound of a chunk's length (a table may take up to twice as much).

    Returns:
        The chunks in reading order; empty when the document holds no text besides headings.

    Raises:
        ValueError: ``max_chars`` is below :data:`MIN_MAX_CHARS` or ``source`` is empty.
    """
    if max_chars < MIN_MAX_CHARS:
        raise ValueError(f"max_chars must be at least {MIN_MAX_CHARS}, got {max_chars}")
    if not source:
        raise ValueError("source must be a non-empty document name")
    kind = kind or document_kind(source) or "markdown"
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    sections = _markdown_sections(lines) if kind == "markdown" else [("", _paragraphs(lines))]
    chunks: list[KBChunk] = []
    for heading, blocks in sections:
        for body in _pack(blocks, max_chars):
            chunks.append(KBChunk(f"{source}#{len(chunks) + 1}", source, heading, body))
    return chunks


# Parsing ---------------------------------------------------------------------------------------------


def _skip_front_matter(lines: list[str]) -> int:
    """Index of the first line after a YAML front-matter block (0 when there is none)."""
    if not lines or lines[0].strip() != "---":
        return 0
    for i in range(1, min(len(lines), 200)):
        if lines[i].strip() in ("---", "..."):
            return i + 1
    return 0


def _clean_heading(raw: str) -> str:
    text = raw.strip()
    for marker in ("**", "__", "`"):
        if len(text) > 2 * len(marker) and text.startswith(marker) and text.endswith(marker):
            text = text[len(marker) : -len(marker)].strip()
    return text


def _is_table_start(lines: list[str], i: int) -> bool:
    return "|" in lines[i] and i + 1 < len(lines) and bool(_TABLE_SEPARATOR.match(lines[i + 1]))


def _markdown_sections(lines: list[str]) -> list[tuple[str, list[_Block]]]:
    """Sections of a Markdown document: (heading path, blocks of its own body), in reading order."""
    sections: list[tuple[str, list[_Block]]] = []
    path: list[tuple[int, str]] = []
    blocks: list[_Block] = []
    para: list[str] = []

    def flush() -> None:
        if para:
            kind: BlockKind = "list" if _LIST_ITEM.match(para[0]) else "paragraph"
            blocks.append(_Block(kind, tuple(para)))
            para.clear()

    def open_section(level: int, title: str) -> None:
        nonlocal blocks
        flush()
        sections.append((HEADING_SEPARATOR.join(t for _, t in path), blocks))
        while path and path[-1][0] >= level:
            path.pop()
        if title:
            path.append((level, title))
        blocks = []

    i = _skip_front_matter(lines)
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            flush()
            marker = fence.group(1)
            code = [line]
            i += 1
            while i < len(lines):
                code.append(lines[i])
                closing = lines[i].strip()
                i += 1
                if len(closing) >= len(marker) and set(closing) == {marker[0]}:
                    break
            blocks.append(_Block("code", tuple(code)))
            continue
        atx = _ATX.match(line)
        if atx:
            open_section(len(atx.group(1)), _clean_heading(atx.group(2) or ""))
            i += 1
            continue
        if len(para) == 1 and _SETEXT.match(line) and not _LIST_ITEM.match(para[0]):
            title = _clean_heading(para.pop())
            open_section(1 if line.strip().startswith("=") else 2, title)
            i += 1
            continue
        if _is_table_start(lines, i):
            flush()
            table = [lines[i], lines[i + 1]]
            i += 2
            while i < len(lines) and lines[i].strip() and "|" in lines[i]:
                table.append(lines[i])
                i += 1
            blocks.append(_Block("table", tuple(table)))
            continue
        if not line.strip() or _THEMATIC_BREAK.match(line):
            flush()
        else:
            para.append(line.rstrip())
        i += 1
    open_section(0, "")
    return [(heading, body) for heading, body in sections if body]


def _paragraphs(lines: list[str]) -> list[_Block]:
    """Blank-line separated paragraphs of a plain-text document."""
    blocks: list[_Block] = []
    para: list[str] = []
    for line in [*lines, ""]:
        if line.strip():
            para.append(line.rstrip())
        elif para:
            blocks.append(_Block("paragraph", tuple(para)))
            para = []
    return blocks


# Splitting and packing -------------------------------------------------------------------------------


def _pack(blocks: list[_Block], max_chars: int) -> list[str]:
    """Pack blocks, split where needed, into chunk texts of at most ``max_chars`` (tables: twice that)."""
    out: list[str] = []
    current = ""
    for block in blocks:
        for part in _split_block(block, max_chars):
            if current and len(current) + 2 + len(part) > max_chars:
                out.append(current)
                current = part
            else:
                current = f"{current}\n\n{part}" if current else part
    if current:
        out.append(current)
    return out


def _split_block(block: _Block, max_chars: int) -> list[str]:
    text = block.text.strip("\n")
    if not text.strip():
        return []
    if len(text) <= max_chars or (block.kind == "table" and len(text) <= 2 * max_chars):
        return [text]
    if block.kind == "table":
        return _split_table(block.lines, max_chars)
    if block.kind in ("list", "code"):
        return _group(_list_items(block.lines) if block.kind == "list" else list(block.lines), max_chars, "\n")
    return _group(_sentences(" ".join(line.strip() for line in block.lines)), max_chars, " ")


def _list_items(lines: tuple[str, ...]) -> list[str]:
    """A list's items, each with its continuation lines."""
    items: list[str] = []
    for line in lines:
        if _LIST_ITEM.match(line) or not items:
            items.append(line)
        else:
            items[-1] = f"{items[-1]}\n{line}"
    return items


def _split_table(lines: tuple[str, ...], max_chars: int) -> list[str]:
    """Row groups of a long table, each under a copy of the header row and the separator row."""
    header = "\n".join(lines[:2])
    budget = max(max_chars, 2 * len(header))
    pieces: list[str] = []
    rows: list[str] = []
    size = len(header)
    for row in lines[2:]:
        if rows and size + 1 + len(row) > budget:
            pieces.append("\n".join([header, *rows]))
            rows, size = [], len(header)
        rows.append(row)
        size += 1 + len(row)
    if rows:
        pieces.append("\n".join([header, *rows]))
    return pieces


def _sentences(text: str) -> list[str]:
    """Sentences of a paragraph; a period after a known abbreviation or a single letter does not end one."""
    out: list[str] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        end = m.end()
        if end >= len(text):
            break
        following = text[end]
        before = _LAST_WORD.search(text, max(start, m.start() - 32), m.start())
        word = before.group(0).lower().lstrip("([\"'") if before else ""
        if text[m.start()] == "." and (word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())):
            continue
        if not (following.isupper() or following.isdigit() or following in "([\"'"):
            continue
        out.append(text[start:end].strip())
        start = end
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out


def _group(parts: list[str], max_chars: int, joiner: str) -> list[str]:
    """Greedy groups of consecutive parts of at most ``max_chars``; a part longer than that is cut at words."""
    groups: list[str] = []
    current = ""
    for part in parts:
        for piece in _cut_words(part, max_chars) if len(part) > max_chars else [part]:
            if current and len(current) + len(joiner) + len(piece) > max_chars:
                groups.append(current)
                current = piece
            else:
                current = f"{current}{joiner}{piece}" if current else piece
    if current:
        groups.append(current)
    return groups


def _cut_words(text: str, max_chars: int) -> list[str]:
    """Cut an over-long sentence at the last whitespace before each ``max_chars`` boundary."""
    pieces: list[str] = []
    rest = text
    while len(rest) > max_chars:
        cut = rest.rfind(" ", 0, max_chars + 1)
        if cut <= 0:
            cut = max_chars
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces
