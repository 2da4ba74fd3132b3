"""Split echo reports into EchoPrime's 15 anatomical sections plus ``Free Text``.

Echo reports arrive in three shapes, all handled by :func:`parse_echo_report`:

- headed sections (``Left Ventricle:``, ``LEFT VENTRICLE``, ``LV:``, ``Mitral valve -``,
  ``## Mitral Valve``), with the usual synonyms and abbreviations;
- unheaded prose, classified sentence by sentence by the anatomy the sentence names first;
- EchoPrime's ``"Section: text [SEP] Section: text"`` strings.

Rules worth knowing (each chosen on purpose):

- Text under an anatomical header stays in that section, even when a sentence names another anatomy.
- Administrative headers (patient, dates, indication, history, comparison, technique, quality) go
  to Free Text as a whole: they describe the request or the prior study, not current findings, and
  "r/o pericardial effusion" must not become a Pericardium finding.
- Summary headers (Summary, Conclusion, Impression): when the report also has anatomical headers,
  the summary restates them and goes to Free Text; when it has none, the summary is the only source
  of findings and each sentence is classified like unheaded prose. A sentence is never stored twice.
- The left ventricular outflow tract (LVOT) belongs to Aortic Valve (LVOT velocities and diameter
  feed the aortic valve assessment); the right ventricular outflow tract belongs to Pulmonic Valve.
- RA pressure / right atrial pressure belongs to IVC, from which it is estimated.
- A sentence that names the left ventricle only as the place of a regional wall motion abnormality
  ("The left ventricle shows hypokinesis of the inferior wall") goes to Resting Segmental Wall
  Motion Analysis; one that also speaks of size, thickness or global function stays Left Ventricle.

Section text is the section's sentences in reading order, joined by single spaces.
"""

from __future__ import annotations

import re

from rag.ingest.sections.echo_headers import FINDING_LIKE_HEADERS, UNHEADED, Scope, header_key, resolve_header
from rag.ingest.sections.echo_terms import classify
from rag.ingest.sections.model import ECHO_SCHEMA, ParsedReport, assemble, squash
from rag.vocab.sections import FREE_TEXT

__all__ = ["parse_echo_report"]


def _assign(sentence: str, scope: Scope, report_has_anatomic_headers: bool) -> str:
    if scope.summary and report_has_anatomic_headers:
        return FREE_TEXT
    if len(scope.sections) == 1:
        return scope.sections[0]
    found = classify(sentence)
    if not scope.sections:
        return found or FREE_TEXT
    return found if found in scope.sections else scope.sections[0]


# --------------------------------------------------------------------------------------------------
# Echo scanning: lines, headers, sentences.
# --------------------------------------------------------------------------------------------------

_SEP = re.compile(r"\s*\[SEP\]\s*", re.IGNORECASE)
_WRAPPED = re.compile(r"(?<=[a-z,])[ \t]*\r?\n[ \t]*(?=[a-z])")
_BULLET = re.compile(r"^(?:[-*•·▪]|\d{1,2}[.)])\s+")
_MARKDOWN_HEADING = re.compile(r"^#{1,6}\s*(?P<head>.*?)\s*#*$")
_HEAD_COLON = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9 '’/&,()+-]{0,59}?)\s*:\s*(?P<rest>.*)$", re.S)
_HEAD_DASH = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9 '’/&,()+]{0,59}?)\s+[-–—]\s+(?P<rest>.*)$", re.S)
_SENTENCE_BREAK = re.compile(r"(?<=;)\s+|(?<=[.!?])\s+(?=[^a-z\s])")
_TERMINAL_PUNCTUATION = (".", "!", "?", ";")


def _sentences(line: str) -> list[str]:
    return [part for part in (squash(piece) for piece in _SENTENCE_BREAK.split(line)) if part]


class _EchoScanner:
    """Walks a report line by line and records (sentence, scope) pairs in reading order."""

    def __init__(self) -> None:
        self.pieces: list[tuple[str, Scope]] = []
        self.saw_anatomic_header = False
        self._scope = UNHEADED
        self._scope_has_text = False
        self._line_only = False

    def feed(self, text: str) -> None:
        text = _WRAPPED.sub(" ", _SEP.sub("\n", text))
        for raw_line in text.splitlines():
            self._feed_line(raw_line)

    def _enter(self, scope: Scope, *, line_only: bool = False) -> None:
        self._scope = scope
        self._scope_has_text = False
        self._line_only = line_only
        self.saw_anatomic_header = self.saw_anatomic_header or scope.anatomic

    def _feed_line(self, raw_line: str) -> None:
        line = _BULLET.sub("", raw_line.replace("**", "").replace("__", "").strip())
        if not line:
            if self._scope_has_text:
                self._enter(UNHEADED)
            return
        if self._heading_line(line):
            return
        for index, sentence in enumerate(_sentences(line)):
            self._feed_sentence(sentence, first=index == 0)
        if self._line_only:
            self._enter(UNHEADED)

    def _heading_line(self, line: str) -> bool:
        """Consume a line that is only a header (markdown, or a known header alone); True if consumed."""
        markdown = _MARKDOWN_HEADING.match(line)
        if markdown is not None:
            self._enter(resolve_header(markdown["head"]) or UNHEADED)
            return True
        if line.endswith(_TERMINAL_PUNCTUATION):
            return False
        scope = resolve_header(line)
        if scope is None:
            return False
        key = header_key(line)
        if key in FINDING_LIKE_HEADERS and not line.endswith(":") and not line.isupper():
            return False
        self._enter(scope)
        if scope.admin:
            self._record(line)
        return True

    def _feed_sentence(self, sentence: str, *, first: bool) -> None:
        match = _HEAD_COLON.match(sentence) or (_HEAD_DASH.match(sentence) if first else None)
        if match is not None:
            scope = resolve_header(match["head"])
            if scope is not None:
                rest = match["rest"].strip()
                self._enter(scope, line_only=scope.admin and bool(rest))
                if not scope.admin:  # administrative lines keep their label in Free Text
                    sentence = rest
        if sentence:
            self._record(sentence)

    def _record(self, sentence: str) -> None:
        self.pieces.append((sentence, self._scope))
        self._scope_has_text = True


def parse_echo_report(text: str) -> ParsedReport:
    """Split an echo report into EchoPrime's anatomical sections plus Free Text.

    Sections come in ``ECHO_SECTIONS`` order, then Free Text; empty ones are omitted. Within a
    section, sentences keep their reading order. See the module docstring for the rules.
    """
    scanner = _EchoScanner()
    scanner.feed(text)
    buckets: dict[str, list[str]] = {}
    for sentence, scope in scanner.pieces:
        section = _assign(sentence, scope, scanner.saw_anatomic_header)
        buckets.setdefault(section, []).append(sentence)
    return assemble("echo", ECHO_SCHEMA, buckets)
