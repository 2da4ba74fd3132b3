"""A drafted sentence never contradicts the neighbour vote it cites, and every abnormal vote is stated."""

from __future__ import annotations

import pytest

from rag.draft import Drafter
from rag.generate.consistency import contradictions, vote_consistent
from rag.generate.report import CaseEvidence, FindingEvidence, SectionDraft, Sentence
from rag.vocab.findings import PHENOTYPES
from rag.vocab.grades import sentence_grades
from tests.conftest import EmbeddedArchive


@pytest.fixture(scope="module")
def drafter(embedded_archive: EmbeddedArchive) -> Drafter:
    return Drafter(embedded_archive.config, kb=None)


def test_contradictions_read_grades_as_the_votes_do() -> None:
    voted = {"mitral_regurgitation": 2, "mitral_stenosis": 0}
    assert contradictions("Moderate mitral regurgitation. No mitral stenosis.", voted) == {}
    assert contradictions("Severe mitral regurgitation.", voted) == {"mitral_regurgitation": [3]}
    assert contradictions("The mitral valve leaflets are thin.", voted) == {}  # says nothing about MR


def test_a_contradicting_sentence_is_replaced_by_the_votes_wording(drafter: Drafter) -> None:
    studies = sorted(drafter.retriever.studies.study_ids.tolist())
    context = drafter.context(int(studies[0]))
    section = "Mitral Valve"
    voted = context.voted_grades(section)
    assert "mitral_regurgitation" in voted, voted
    grade = voted["mitral_regurgitation"]
    wrong = (grade + 2) % 4
    case = CaseEvidence(study_id=1, report_section_id=1, section=section, similarity=0.5, rank=1)
    draft = SectionDraft(
        name=section,
        sentences=[Sentence(text=PHENOTYPES["mitral_regurgitation"].wording(wrong), evidence=[case])],
    )
    sections, warnings = vote_consistent(context, [draft])
    fixed = next(s for s in sections if s.name == section)
    assert [s.text for s in fixed.sentences].count(PHENOTYPES["mitral_regurgitation"].wording(grade)) == 1
    assert not any(contradictions(s.text, voted) for s in fixed.sentences)
    cited = [e for s in fixed.sentences for e in s.evidence if isinstance(e, FindingEvidence)]
    assert any(e.name == "mitral_regurgitation" and e.grade == grade for e in cited)
    assert any("replaced" in w and "mitral_regurgitation" in w for w in warnings)


def test_no_drafted_sentence_contradicts_the_vote_and_abnormal_votes_are_stated(drafter: Drafter) -> None:
    for study in sorted(drafter.retriever.studies.study_ids.tolist()):
        context = drafter.context(int(study))
        report = drafter.generator("extractive").generate(context)
        for section in report.sections:
            voted = context.voted_grades(section.name)
            for sentence in section.sentences:
                assert not contradictions(sentence.text, voted), (study, section.name, sentence.text, voted)
        for section_name in context.retrieval.sections:
            for name, grade in context.voted_grades(section_name).items():
                if grade < 1:
                    continue
                drafted = report.section(section_name)
                rule = PHENOTYPES[name].rule
                assert drafted is not None and rule is not None, (study, section_name, name)
                assert any(sentence_grades(s.text, rule) for s in drafted.sentences), (study, name, drafted.text)


def test_the_lv_function_stated_agrees_with_the_lvef_stated(drafter: Drafter) -> None:
    from rag.vocab.cutoffs import lvef_grades

    checked = 0
    for study in sorted(drafter.retriever.studies.study_ids.tolist()):
        context = drafter.context(int(study))
        lvef = context.voted_values.get("lvef")
        grades = context.voted_grades("Left Ventricle")
        if lvef is None or "lv_systolic_dysfunction" not in grades:
            continue
        checked += 1
        assert grades["lv_systolic_dysfunction"] in lvef_grades(lvef[0]), (study, lvef, grades)
    assert checked > 0


def test_lvef_grades_without_the_patients_sex() -> None:
    from rag.vocab.cutoffs import lvef_grades

    assert lvef_grades(60.0) == (0,)
    assert lvef_grades(52.6) == (0, 1)  # normal for a man, mildly reduced for a woman
    assert lvef_grades(45.0) == (1,) and lvef_grades(35.0) == (2,) and lvef_grades(25.0) == (3,)
