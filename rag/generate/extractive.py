"""The default generator: section texts of the nearest prior cases, with voted numbers.

For each section with evidence, EchoPrime takes the best neighbour's text. This generator does the
same with two guards:

- among the k retrieved texts it takes the best-ranked one whose stated grades agree with the
  neighbour vote of that section's findings (e.g. the vote says moderate MR: a text that says "no
  mitral regurgitation" is passed over for one that says "moderate"), falling back to the top hit;
  then a sentence that still contradicts the vote is replaced by the vote's wording, and every
  finding the vote calls abnormal is stated (:mod:`rag.generate.consistency`);
- numbers are never copied: values the vote predicts (LVEF, LVIDd, PASP ...) are filled in from the
  vote, and any other number with a unit is blanked (``___ m/s``) for the reader to measure.

Every sentence carries the case it came from, the voted values it states and the knowledge-base
passages about its section.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from rag.generate.consistency import vote_consistent
from rag.generate.context import DraftContext, assemble_report, case_evidence, grade_agreement
from rag.generate.report import (
    Evidence,
    KBEvidence,
    MeasurementEvidence,
    Report,
    SectionDraft,
    Sentence,
)
from rag.generate.text import fill_measurements, split_sentences

if TYPE_CHECKING:
    from rag.retrieve import SectionHit

__all__ = ["ExtractiveGenerator", "choose_hit"]

# sentences that state a grade or a value get the section's KB passages as references
_GRADED = re.compile(
    r"\b(?:normal|mild|moderate|severe|reduced|dilated|enlarged|hypertroph\w*|stenosis|regurgitation|effusion|"
    r"hypokines\w*|akines\w*|collaps\w*|pressure|\d)",
    re.IGNORECASE,
)


def choose_hit(context: DraftContext, section: str, hits: list[SectionHit]) -> tuple[SectionHit, int, int]:
    """The best-ranked hit whose stated grades agree most with the vote: (hit, agreeing, of how many)."""
    wanted = context.voted_grades(section)
    best = hits[0]
    best_score = -1
    for h in hits:
        score = grade_agreement(wanted, context.hit_grades.get(h.report_section_id, {}))
        if score > best_score:
            best, best_score = h, score
        if score == len(wanted):
            break
    return best, best_score, len(wanted)


class ExtractiveGenerator:
    """Drafts each section from the nearest prior cases' text, numbers from the neighbour vote."""

    name = "extractive"

    def __init__(self, *, agree_with_votes: bool = True) -> None:
        """``agree_with_votes=False`` copies each section's top hit as EchoPrime does (the baseline)."""
        self.agree_with_votes = agree_with_votes

    def generate(self, context: DraftContext) -> Report:
        """A report for the context's study."""
        voted = context.voted_values
        sections: list[SectionDraft] = []
        warnings: list[str] = []
        for section, hits in context.retrieval.sections.items():
            hits = [h for h in hits if h.text and h.text.strip()]
            if not hits:
                continue
            hit = choose_hit(context, section, hits)[0] if self.agree_with_votes else hits[0]
            kb: list[KBEvidence] = context.kb.get(section, [])
            sentences = []
            for raw in split_sentences(hit.text or ""):
                done = fill_measurements(raw, voted)
                evidence: list[Evidence] = [case_evidence(hit)]
                evidence += [MeasurementEvidence(name=n, value=round(v, 3), unit=u) for n, v, u in done.filled]
                if _GRADED.search(done.text):
                    evidence += kb
                if done.blanked:
                    warnings.append(
                        f"{section}: {', '.join(done.blanked)} left blank (no neighbour vote for that value)"
                    )
                sentences.append(Sentence(text=done.text, evidence=evidence))
            sections.append(SectionDraft(name=section, sentences=sentences))
        if self.agree_with_votes:
            sections, replaced = vote_consistent(context, sections)
            warnings += replaced
        return assemble_report(context, sections, generator=self.name, warnings=warnings)
