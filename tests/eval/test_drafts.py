"""Scoring drafts against the studies' own reports, and the intervals beside the figures."""

from __future__ import annotations

import math

from rag.eval.drafts import FINDINGS, DraftQuality, add_baselines, rate, report_grades, score_grades


def test_grades_are_read_per_section() -> None:
    grades = report_grades("Moderate mitral regurgitation. No mitral stenosis.", "Mitral Valve")
    assert grades == {"mitral_regurgitation": 2, "mitral_stenosis": 0}
    assert report_grades("Moderate mitral regurgitation.", "Aortic Valve")["aortic_stenosis"] == 0


def test_a_draft_stating_the_truth_scores_one_and_all_normal_misses_every_abnormal_finding() -> None:
    truth = {"Mitral Valve": {"mitral_regurgitation": 3}, "Pericardium": {"pericardial_effusion": 1}}
    exact = score_grades(lambda name, section: truth.get(section, {}).get(name, 0), truth)
    assert all(v == 1 for v in exact["grade"]) and len(exact["grade"]) == len(FINDINGS)
    assert exact["abnormal_found"] == [1, 1]

    quality = DraftQuality([1])
    add_baselines(quality, truth, {p.name: 0 for p in FINDINGS})
    normal = quality.rates("all normal")
    assert normal["abnormal_found"].mean == 0.0
    assert math.isclose(normal["grade"].mean, (len(FINDINGS) - 2) / len(FINDINGS))
    assert normal["presence"].n == len(FINDINGS)


def test_rate_pools_findings_and_bootstraps_studies() -> None:
    r = rate([[1, 1, 1, 1], [0, 0], [1, 0]])
    assert math.isclose(r.mean, 5 / 8)
    assert r.low <= r.mean <= r.high and r.n == 8
    assert 0.0 <= r.low < r.high <= 1.0
    assert math.isnan(rate([]).mean)
    same = rate([[1, 0], [1, 0], [1, 0]])
    assert same.low == same.high == 0.5  # every resample has the same rate
