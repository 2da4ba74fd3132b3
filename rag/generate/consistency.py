"""Drafts that say what the votes say: the rule every generator's sections pass through.

For each drafted section and each finding of that section that the neighbour vote grades:

- a sentence that states another grade of the finding than the vote (a neighbour's "severe mitral
  regurgitation" where the vote says moderate) never survives: it is replaced by the vote's own
  wording ("Moderate mitral regurgitation.") citing the vote, and a warning says what was replaced;
- a finding the vote calls abnormal (grade >= 1) that no sentence of its section states is added in
  the vote's wording, so the draft states every abnormal finding of the vote.

Grades are read from sentences with the same rules as everywhere else (:mod:`rag.vocab.grades`);
a sentence that does not mention a finding says nothing about it.
"""

from __future__ import annotations

from collections.abc import Sequence

from rag.generate.context import DraftContext
from rag.generate.report import Evidence, FindingEvidence, SectionDraft, Sentence
from rag.vocab.findings import PHENOTYPES
from rag.vocab.grades import sentence_grades

__all__ = ["contradictions", "vote_consistent"]


def contradictions(text: str, voted: dict[str, int]) -> dict[str, list[int]]:
    """Finding -> the grades ``text`` states that differ from the voted grade (findings it agrees on absent)."""
    out: dict[str, list[int]] = {}
    for name, grade in voted.items():
        rule = PHENOTYPES[name].rule
        if rule is None:
            continue
        wrong = [g for g in sentence_grades(text, rule) if g != grade]
        if wrong:
            out[name] = wrong
    return out


def _vote_sentence(context: DraftContext, name: str, grade: int, kb: Sequence[Evidence]) -> Sentence:
    prediction = context.predictions.predictions.get(name)
    probability = None if prediction is None else prediction.probability
    evidence: list[Evidence] = [FindingEvidence(name=name, grade=grade, probability=probability), *kb]
    return Sentence(text=PHENOTYPES[name].wording(grade), evidence=evidence)


def vote_consistent(context: DraftContext, sections: Sequence[SectionDraft]) -> tuple[list[SectionDraft], list[str]]:
    """The sections with every contradicting sentence replaced and every missing abnormal finding added.

    Returns:
        (sections, warnings): sections in the same order, then sections that only the vote's abnormal
        findings open; one warning per replaced sentence.
    """
    warnings: list[str] = []
    out: list[SectionDraft] = []
    done: set[str] = set()
    for section in sections:
        out.append(_consistent_section(context, section, warnings))
        done.add(section.name)
    for name in dict.fromkeys(p.section for p in PHENOTYPES.values() if p.kind == "finding"):
        if name in done or name not in context.retrieval.sections:
            continue
        added = _consistent_section(context, SectionDraft(name=name, sentences=[]), warnings)
        if added.sentences:
            out.append(added)
    return out, warnings


def _consistent_section(context: DraftContext, section: SectionDraft, warnings: list[str]) -> SectionDraft:
    voted = context.voted_grades(section.name)
    kb = [e for e in context.kb.get(section.name, [])]
    sentences: list[Sentence] = []
    stated: dict[str, int] = {}
    worded: set[str] = set()
    for sentence in section.sentences:
        wrong = contradictions(sentence.text, voted)
        if not wrong:
            sentences.append(sentence)
            for name in voted:
                rule = PHENOTYPES[name].rule
                grades = sentence_grades(sentence.text, rule) if rule is not None else []
                if grades:
                    stated[name] = max(stated.get(name, 0), *grades)
            continue
        for name, grades in wrong.items():
            warnings.append(
                f"{section.name}: a sentence stating {name} grade {max(grades)} was replaced by the vote's "
                f"grade {voted[name]}: {sentence.text[:80]!r}"
            )
            if name not in worded:
                sentences.append(_vote_sentence(context, name, voted[name], kb))
                worded.add(name)
                stated[name] = voted[name]
    for name, grade in voted.items():
        if grade >= 1 and stated.get(name, 0) < 1 and name not in worded:
            sentences.append(_vote_sentence(context, name, grade, kb))
    return SectionDraft(name=section.name, sentences=sentences)
