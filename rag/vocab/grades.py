"""Finding grades read from report-section text with simple keyword rules.

A finding is named by a keyword pattern (``regurgitation|insufficiency|\\bMR\\b`` for mitral
regurgitation, read in the Mitral Valve section). In each sentence that contains the keyword, the
grade is given by the severity word nearest before the first keyword match, else the nearest one
after it:

- 0: no, none, not, without, absent, trace, trivial, normal, normally, preserved, unremarkable
- 1: mild, mildly, small, minimal
- 2: moderate, moderately
- 3: severe, severely, large, marked, markedly

A sentence that names the keyword with no severity word gives 1 when it says the finding is there
(reduced, depressed, impaired, dilated, enlarged, increased, elevated, abnormal) and otherwise the
finding's "bare" grade (1 for words that are findings by themselves, such as "hypokinesis"; None for
words that are not, such as "LVEF", whose sentence then states nothing). Over several sentences the
highest grade wins. A section that never states the finding gives 0: reports leave normal findings
unsaid far more often than abnormal ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["GradeRule", "sentence_grades", "statement_grade"]

_SEVERITY_WORDS: tuple[tuple[str, ...], ...] = (
    ("no", "none", "not", "without", "absent", "trace", "trivial", "normal", "normally", "preserved", "unremarkable"),
    ("mild", "mildly", "small", "minimal"),
    ("moderate", "moderately"),
    ("severe", "severely", "large", "marked", "markedly"),
)
_SEVERITY: dict[str, int] = {word: grade for grade, words in enumerate(_SEVERITY_WORDS) for word in words}
_PRESENT = frozenset(
    ("reduced", "depressed", "impaired", "dilated", "enlarged", "increased", "elevated", "abnormal", "present")
)
_WORD = re.compile(r"[A-Za-z]+")
_SENTENCE = re.compile(r"(?<=[.;!?])\s+")


@dataclass(frozen=True)
class GradeRule:
    """How to read one finding: the keyword pattern and the grade of a bare mention."""

    keyword: str
    bare: int | None = 1

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(self.keyword, re.IGNORECASE)


def _grade_in_sentence(sentence: str, match: re.Match[str], bare: int | None) -> int | None:
    words = [(m.start(), m.group().lower()) for m in _WORD.finditer(sentence)]
    before = [_SEVERITY[w] for pos, w in words if pos < match.start() and w in _SEVERITY]
    if before:
        return before[-1]
    after = [_SEVERITY[w] for pos, w in words if pos >= match.end() and w in _SEVERITY]
    if after:
        return after[0]
    if any(w in _PRESENT for _, w in words):
        return 1
    return bare


def sentence_grades(text: str, rule: GradeRule) -> list[int]:
    """The grade each keyword-bearing sentence of ``text`` states (sentences stating nothing left out)."""
    pattern = rule.pattern
    grades = []
    for sentence in _SENTENCE.split(text):
        match = pattern.search(sentence)
        if match is None:
            continue
        grade = _grade_in_sentence(sentence, match, rule.bare)
        if grade is not None:
            grades.append(grade)
    return grades


def statement_grade(text: str, rule: GradeRule) -> int:
    """The finding's grade 0-3 in one section's text (0 when the text does not state it)."""
    grades = sentence_grades(text, rule)
    return max(grades) if grades else 0
