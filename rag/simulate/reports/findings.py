"""All anatomical sections of a report in ``ECHO_SECTIONS`` order, and the conclusion that restates
the key findings."""

from __future__ import annotations

from rag.simulate.reports.chambers import atria, atrial_septum, left_ventricle, right_ventricle, wall_motion
from rag.simulate.reports.composer import Composer
from rag.simulate.reports.valves import aortic_valve, mitral_valve, pulmonic_valve, tricuspid_valve
from rag.simulate.reports.vessels import aorta, ivc, pericardium, pulmonary_artery, pulmonary_veins
from rag.simulate.reports.wording import ADJ, ADV, cap
from rag.simulate.truth import EFFUSION_GRADES, GRADES


def write_findings(c: Composer) -> None:
    """All sections, in ``ECHO_SECTIONS`` order."""
    left_ventricle(c)
    wall_motion(c)
    right_ventricle(c)
    atria(c)
    atrial_septum(c)
    mitral_valve(c)
    aortic_valve(c)
    tricuspid_valve(c)
    pulmonic_valve(c)
    pericardium(c)
    aorta(c)
    ivc(c)
    pulmonary_artery(c)
    pulmonary_veins(c)


def conclusion_lines(c: Composer) -> list[str]:
    """Restates the key findings (all of them already stated in their sections)."""
    s, g = c.study, c.grades
    lines = []
    ef_grade = g["lvef"]
    if ef_grade == 0:
        lines.append(f"Normal left ventricular systolic function (LVEF {c.lvef_text}).")
    else:
        lines.append(f"{cap(ADV[ef_grade])} reduced left ventricular systolic function (LVEF {c.lvef_text}).")
    if g["lvedd_cm"]:
        lines.append(f"{cap(ADV[g['lvedd_cm']])} dilated left ventricle.")
    if g["wall_cm"]:
        lines.append(f"{cap(ADJ[g['wall_cm']])} concentric left ventricular hypertrophy.")
    if s.wall_motion != "normal":
        lines.append(f"{cap(s.wall_motion)}.")
    if s.rv_dilation >= 2:
        lines.append(f"{cap(ADV[s.rv_dilation])} dilated right ventricle.")
    if s.rv_dysfunction:
        lines.append("Reduced right ventricular systolic function.")
    if s.la_dilation >= 2:
        lines.append(f"{cap(ADV[s.la_dilation])} dilated left atrium.")
    for field, name in (
        ("mr", "mitral regurgitation"),
        ("aortic_stenosis", "aortic stenosis"),
        ("ar", "aortic regurgitation"),
        ("tr", "tricuspid regurgitation"),
    ):
        grade = int(getattr(s, field))
        if grade >= 2 or (field == "aortic_stenosis" and grade == 1):
            lines.append(f"{cap(GRADES[grade])} {name}.")
    if s.effusion:
        lines.append(f"{cap(EFFUSION_GRADES[s.effusion])} pericardial effusion.")
    if g["pasp_mmhg"] >= 2:
        lines.append(f"{cap(ADJ[g['pasp_mmhg']])} pulmonary hypertension.")
    if len(lines) == 1 and c.chance(0.5):
        lines.append("Otherwise normal echocardiogram.")
    return lines
