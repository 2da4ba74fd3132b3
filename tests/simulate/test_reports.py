"""Simulated echo reports: they parse into the right sections, state the truth, and vary like real ones."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass, replace

import numpy as np
import pytest

from rag.ingest.measurements import extract_measurements
from rag.ingest.sections import parse_echo_report
from rag.simulate.reports import (
    FINDING_SECTIONS,
    REPORT_STYLES,
    SimReport,
    finding_grades,
    write_patient_reports,
    write_report,
)
from rag.simulate.truth import EFFUSION_GRADES, PatientTruth, StudyTruth, changes, simulate_patients
from rag.vocab.cutoffs import la_diameter_grade, lv_size_grade, lvef_grade, pasp_grade, wall_thickness_grade
from rag.vocab.sections import ECHO_SECTIONS, FREE_TEXT

ADJ = ("", "mild", "moderate", "severe")
ADV = ("", "mildly", "moderately", "severely")
MONTHS = tuple(calendar.month_name[1:])


@dataclass(frozen=True)
class Case:
    patient: PatientTruth
    study: StudyTruth
    prior: StudyTruth | None
    report: SimReport

    @property
    def grades(self) -> dict[str, int]:
        return finding_grades(self.patient, self.study)

    def section(self, name: str) -> str:
        return self.report.sections.get(name, "").lower()


def _archive(seed: int) -> list[Case]:
    rng = np.random.default_rng(seed)
    cases = []
    for patient in simulate_patients(80, seed=seed):
        prior: StudyTruth | None = None
        for study in patient.studies:
            cases.append(Case(patient, study, prior, write_report(patient, study, prior, rng)))
            prior = study
    return cases


@pytest.fixture(scope="module")
def archive() -> list[Case]:
    cases = _archive(seed=7)
    assert len(cases) >= 180
    return cases


def _renderings(date: dt.date) -> set[str]:
    month = MONTHS[date.month - 1]
    return {
        date.isoformat(),
        f"{date.month:02d}/{date.day:02d}/{date.year}",
        f"{month[:3]} {date.day}, {date.year}",
        f"{date.day} {month} {date.year}",
        f"{date.day:02d}-{month[:3]}-{date.year}",
    }


# --------------------------------------------------------------------------------------------------
# Structure
# --------------------------------------------------------------------------------------------------


def test_every_report_parses_into_the_sections_it_wrote(archive: list[Case]) -> None:
    for case in archive:
        parsed = parse_echo_report(case.report.text)
        anatomical = {name: text for name, text in parsed.as_dict().items() if name != FREE_TEXT}
        assert anatomical == dict(case.report.sections), case.report.text
        assert list(case.report.sections) == [name for name in ECHO_SECTIONS if name in case.report.sections]
        for field in case.report.mentioned:
            assert parsed.get(FINDING_SECTIONS[field]), (field, case.report.text)


def test_header_names_the_patient_and_the_date(archive: list[Case]) -> None:
    for case in archive:
        free_text = parse_echo_report(case.report.text).get(FREE_TEXT) or ""
        assert case.patient.patient_id in free_text
        last, _, first = case.patient.name.partition("^")
        assert last.lower() in free_text.lower() and first.lower() in free_text.lower()
        assert any(rendering in free_text for rendering in _renderings(case.study.date))
        assert re.search(r"^(?:Indication|Reason for study|Clinical history): ", case.report.text, re.MULTILINE)
        if "heart_rate" in case.report.mentioned:
            assert f"{round(case.study.heart_rate)} bpm" in free_text


def test_layouts_vary(archive: list[Case]) -> None:
    assert {case.report.style for case in archive} == set(REPORT_STYLES)
    first_lines = {case.report.text.splitlines()[0] for case in archive}
    assert len(first_lines) > 20
    with_conclusion = [
        case
        for case in archive
        if re.search(r"^(?:Conclusions?|Impression|Summary):?$|^IMPRESSION$", case.report.text, re.M)
    ]
    assert 0.2 < len(with_conclusion) / len(archive) < 0.7
    for case in with_conclusion:
        assert case.report.style != "prose"


# --------------------------------------------------------------------------------------------------
# The text states the truth
# --------------------------------------------------------------------------------------------------


def _has(text: str, pattern: str) -> bool:
    return re.search(pattern, text) is not None


def _check_grade_words(case: Case, field: str) -> None:
    grade = case.grades[field]
    text = case.section(FINDING_SECTIONS[field])
    s = case.study
    if field == "lvef":
        if grade:
            assert _has(text, rf"{ADV[grade]} (?:reduced|depressed|impaired)")
        else:
            assert _has(text, r"normal|preserved") and not _has(text, r"ly (?:reduced|depressed|impaired)")
    elif field == "lvedd_cm":
        assert _has(text, rf"{ADV[grade]} (?:dilated|enlarged)") if grade else not _has(text, r"dilated|enlarged")
    elif field == "wall_cm":
        if grade:
            assert _has(text, rf"{ADJ[grade]} concentric|{ADV[grade]} increased")
        else:
            assert not _has(text, r"concentric|ly increased")
    elif field == "wall_motion":
        assert s.wall_motion.split()[-1] in text if grade else _has(text, r"normal|no regional")
    elif field == "rv_dilation":
        assert _has(text, rf"{ADV[grade]} (?:dilated|increased)") if grade else not _has(text, r"dilated|increased")
    elif field == "rv_dysfunction":
        assert _has(text, r"reduced|depressed") if grade else not _has(text, r"reduced|depressed")
    elif field in ("la_dilation", "ra_dilation"):
        if grade:
            assert _has(text, rf"{ADV[grade]} dilated|{ADJ[grade]} (?:left|right) atrial enlargement")
        else:
            assert not _has(text, r"dilated|enlargement")
    elif field in ("mr", "tr"):
        assert _has(text, rf"\b{ADJ[grade]}\b") if grade else not _has(text, r"\b(?:mild|moderate|severe)\b")
    elif field == "aortic_stenosis":
        assert (
            _has(text, rf"{ADJ[grade]} aortic stenosis")
            if grade
            else _has(text, r"no aortic stenosis|without stenosis")
        )
    elif field == "ar":
        if grade:
            assert _has(text, rf"{ADJ[grade]} aortic (?:regurgitation|insufficiency)")
        else:
            assert _has(text, r"(?:no|trace) aortic (?:regurgitation|insufficiency)|stenosis or regurgitation")
    elif field == "av_thickened":
        assert _has(text, r"thicken|scleros|sclerotic") if grade else not _has(text, r"thicken|scleros|sclerotic")
    elif field == "effusion":
        if grade:
            assert _has(text, rf"\b{EFFUSION_GRADES[grade]}\b")
        else:
            assert _has(text, r"no pericardial effusion|without effusion")
            assert not _has(text, r"\b(?:small|moderate|large)\b")
    elif field == "ivc_dilated":
        assert _has(text, r"dilated") if grade else _has(text, r"normal in size|normal ivc size")
    elif field == "ivc_collapse":
        assert _has(text, r"less than 50%|<50%") == bool(grade)
    elif field == "pasp_mmhg":
        if grade:
            assert _has(text, rf"{ADV[grade]} elevated|{ADJ[grade]} pulmonary hypertension")
        else:
            assert not _has(text, r"elevated|hypertension")
    else:
        raise AssertionError(f"no check for {field}")


def test_each_mentioned_finding_is_written_with_its_grade(archive: list[Case]) -> None:
    for case in archive:
        for field in case.grades:
            if field in case.report.mentioned:
                try:
                    _check_grade_words(case, field)
                except AssertionError as error:
                    raise AssertionError(f"{field}={case.grades[field]}\n{case.report.text}") from error


def test_findings_not_mentioned_are_not_written(archive: list[Case]) -> None:
    for case in archive:
        mentioned = case.report.mentioned
        if "effusion" not in mentioned:
            assert "Pericardium" not in case.report.sections
        if "mr" not in mentioned:
            assert not _has(case.section("Mitral Valve"), r"regurgitation|\bmr\b")
        if "tr" not in mentioned:
            assert not _has(case.section("Tricuspid Valve"), r"regurgitation|\btr\b")
        if "wall_motion" not in mentioned:
            assert "Resting Segmental Wall Motion Analysis" not in case.report.sections
        if "la_dilation" not in mentioned:
            assert "Left Atrium" not in case.report.sections


def test_lvef_and_pasp_are_read_back_from_the_text(archive: list[Case]) -> None:
    for case in archive:
        values = {m.name: m.value for m in extract_measurements(case.report.text)}
        assert "lvef" in case.report.mentioned
        # Exact, rounded to 5 % or a 5 % range (midpoint): never more than 2.5 points off.
        assert abs(values["lvef"] - case.study.lvef) <= 2.5 + 1e-9, (values["lvef"], case.study.lvef)
        if "pasp_mmhg" in case.report.mentioned:
            assert abs(values["pasp"] - case.study.pasp_mmhg) <= 0.5 + 1e-9
        else:
            assert "pasp" not in values
        assert "rvsp" not in values


def test_other_numbers_agree_with_the_truth(archive: list[Case]) -> None:
    seen: set[str] = set()
    for case in archive:
        values = {m.name: m.value for m in extract_measurements(case.report.text)}
        seen.update(values)
        s, sex = case.study, case.patient.sex
        if "lvidd" in values:
            assert abs(values["lvidd"] - s.lvedd_cm) <= 0.05 + 1e-9
            assert lv_size_grade(values["lvidd"], sex) == case.grades["lvedd_cm"]
        if "lvids" in values:
            assert abs(values["lvids"] - s.lvesd_cm) <= 0.05 + 1e-9
        if "ivsd" in values:
            assert wall_thickness_grade(values["ivsd"], sex) == case.grades["wall_cm"]
        if "la_diameter" in values:
            assert la_diameter_grade(values["la_diameter"], sex) == s.la_dilation
        if "av_peak_velocity" in values:
            velocity = values["av_peak_velocity"]
            assert s.aortic_stenosis == (1 if velocity < 3.0 else 2 if velocity < 4.0 else 3)
            assert velocity >= 2.6
        if "av_mean_gradient" in values:
            gradient = values["av_mean_gradient"]
            assert s.aortic_stenosis == (1 if gradient < 20 else 2 if gradient < 40 else 3)
        if "ivc_diameter" in values:
            assert (values["ivc_diameter"] > 2.1) == s.ivc_dilated
    assert {"lvidd", "lvids", "ivsd", "la_diameter", "av_mean_gradient", "ivc_diameter", "aortic_root"} <= seen


# --------------------------------------------------------------------------------------------------
# Comparison with the prior study
# --------------------------------------------------------------------------------------------------


def _comparison_line(report: SimReport) -> str:
    lines = [line for line in report.text.splitlines() if line.startswith("Comparison:")]
    assert len(lines) <= 1
    return lines[0] if lines else ""


def test_comparison_names_the_prior_date_and_what_changed(archive: list[Case]) -> None:
    directions = {"up": 0, "down": 0}
    for case in archive:
        line = _comparison_line(case.report)
        if case.prior is None:
            assert not re.search(r"\d", line)
            continue
        assert line in (parse_echo_report(case.report.text).get(FREE_TEXT) or "")
        assert any(rendering in line for rendering in _renderings(case.prior.date)), line
        change = case.study.lvef - case.prior.lvef
        if abs(change) >= 8:
            before, after = f"{case.prior.lvef:.0f}%", f"{case.study.lvef:.0f}%"
            assert before in line and after in line, line
            words = r"decreased|fallen|worsened" if change < 0 else r"improved|increased"
            assert _has(line, words), line
            directions["down" if change < 0 else "up"] += 1
        if case.prior.effusion == 0 and case.study.effusion > 0:
            assert "new" in line and "pericardial effusion" in line
        if case.prior.effusion > 0 and case.study.effusion == 0:
            assert _has(line, r"resolved|no longer seen")
        if case.prior.aortic_stenosis < case.study.aortic_stenosis and case.prior.aortic_stenosis:
            assert _has(line, rf"aortic stenosis has (?:progressed|worsened) from {ADJ[case.prior.aortic_stenosis]}")
        unchanged = _has(line.lower(), r"(?<!otherwise )no significant change|findings are unchanged")
        assert unchanged == (not changes(case.prior, case.study)), line
    assert directions["down"]


@pytest.mark.parametrize(
    ("before", "after", "words"), [(35.0, 52.0, r"improved|increased"), (62.0, 40.0, r"decreased|fallen|worsened")]
)
def test_lvef_change_direction(before: float, after: float, words: str) -> None:
    patient = next(p for p in simulate_patients(20, seed=2) if len(p.studies) >= 2)
    prior = replace(patient.studies[0], lvef=before)
    study = replace(patient.studies[1], lvef=after)
    for seed in range(10):
        line = _comparison_line(write_report(patient, study, prior, np.random.default_rng(seed)))
        assert _has(line, words) and f"{before:.0f}%" in line and f"{after:.0f}%" in line, line


def test_comparison_numbers_are_not_read_as_current_measurements(archive: list[Case]) -> None:
    for case in archive:
        line = _comparison_line(case.report)
        assert extract_measurements(line) == []


# --------------------------------------------------------------------------------------------------
# What is left unsaid
# --------------------------------------------------------------------------------------------------


def test_normal_findings_are_sometimes_omitted_and_abnormal_ones_never(archive: list[Case]) -> None:
    normal = omitted = 0
    for case in archive:
        for field, grade in case.grades.items():
            said = field in case.report.mentioned
            if grade == 0:
                normal += 1
                omitted += not said
            elif grade >= 2 or field not in ("mr", "ar", "tr"):
                assert said, (field, grade, case.report.text)
    assert 0.05 <= omitted / normal <= 0.6, omitted / normal


def test_reports_vary_in_which_normal_sections_they_keep(archive: list[Case]) -> None:
    section_sets = {tuple(case.report.sections) for case in archive}
    assert len(section_sets) > len(archive) // 3


# --------------------------------------------------------------------------------------------------
# Determinism, API
# --------------------------------------------------------------------------------------------------


def test_same_seed_same_text() -> None:
    patient = simulate_patients(5, seed=3)[4]
    first = write_patient_reports(patient, np.random.default_rng(11))
    again = write_patient_reports(patient, np.random.default_rng(11))
    other = write_patient_reports(patient, np.random.default_rng(12))
    assert first == again
    assert [r.text for r in first] != [r.text for r in other]
    assert len(first) == len(patient.studies)


def test_prior_must_come_before_the_study() -> None:
    patient = next(p for p in simulate_patients(10, seed=0) if len(p.studies) >= 2)
    with pytest.raises(ValueError, match="prior study of"):
        write_report(patient, patient.studies[0], patient.studies[1], np.random.default_rng(0))


@pytest.mark.parametrize(
    ("grade", "value", "sex", "expected"),
    [
        (lv_size_grade, 5.8, "M", 0),
        (lv_size_grade, 5.9, "M", 1),
        (lv_size_grade, 5.2, "F", 0),
        (lv_size_grade, 5.3, "F", 1),
        (lv_size_grade, 6.2, "F", 3),
        (lv_size_grade, 6.9, "M", 3),
        (wall_thickness_grade, 1.0, "M", 0),
        (wall_thickness_grade, 1.0, "F", 1),
        (wall_thickness_grade, 1.4, "M", 2),
        (wall_thickness_grade, 1.7, "M", 3),
        (la_diameter_grade, 4.0, "M", 0),
        (la_diameter_grade, 3.9, "F", 1),
        (lvef_grade, 52.0, "M", 0),
        (lvef_grade, 52.0, "F", 1),
        (lvef_grade, 40.6, "F", 1),
        (lvef_grade, 40.4, "M", 2),
        (lvef_grade, 29.6, "M", 2),
        (lvef_grade, 29.4, "F", 3),
    ],
)
def test_ase_grades(grade: object, value: float, sex: str, expected: int) -> None:
    assert callable(grade)
    assert grade(value, sex) == expected


def test_pasp_grade_and_bad_sex() -> None:
    assert [pasp_grade(v) for v in (35.0, 36.0, 49.4, 50.0, 59.0, 60.0)] == [0, 1, 1, 2, 2, 3]
    with pytest.raises(ValueError, match="sex must be"):
        lv_size_grade(5.0, "U")
