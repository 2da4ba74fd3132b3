"""Sentences of the valve sections: mitral and tricuspid regurgitation, aortic valve (sclerosis,
stenosis with its Doppler numbers, regurgitation) and pulmonic valve."""

from __future__ import annotations

import numpy as np

from rag.simulate.reports.composer import Composer
from rag.simulate.reports.wording import ADJ, cap
from rag.vocab.cutoffs import half_up
from rag.vocab.sections import AV, MV, PV, TV


def _regurgitation(c: Composer, grade: int, valve: str, abbreviation: str) -> str:
    if grade == 0:
        return c.pick(
            (
                f"No {valve} regurgitation.",
                f"Trace {valve} regurgitation.",
                f"No significant {valve} regurgitation.",
                f"Trace {abbreviation}.",
            )
        )
    adj = ADJ[grade]
    return c.pick(
        (
            f"{cap(adj)} {valve} regurgitation.",
            f"There is {adj} {valve} regurgitation.",
            f"{cap(adj)} {abbreviation}.",
            f"{cap(valve)} regurgitation is {adj}.",
        )
    )


def _atrioventricular_valve(c: Composer, section: str, field: str, valve: str, abbreviation: str) -> None:
    grade: int = getattr(c.study, field)
    say_grade = grade >= 2 or (grade == 1 and not c.chance(0.1)) or (grade == 0 and not c.omit_normal())
    if not say_grade:
        return
    if c.chance(0.5):
        structure = c.pick(
            (
                f"The {valve} valve is structurally normal.",
                f"{cap(valve)} valve leaflets are thin and mobile.",
                f"Normal {valve} valve morphology.",
            )
        )
        c.say(section, structure)
    c.say(section, _regurgitation(c, grade, valve, abbreviation), field)


def mitral_valve(c: Composer) -> None:
    _atrioventricular_valve(c, MV, "mr", "mitral", "MR")


def tricuspid_valve(c: Composer) -> None:
    _atrioventricular_valve(c, TV, "tr", "tricuspid", "TR")


def aortic_valve(c: Composer) -> None:
    s = c.study
    stenosis, regurgitation, thickened = s.aortic_stenosis, s.ar, s.av_thickened
    if stenosis == 0 and regurgitation == 0 and not thickened and c.omit_normal():
        return
    if thickened and stenosis == 0 and regurgitation == 0 and c.chance(0.4):
        c.say(AV, "Aortic valve sclerosis without stenosis.", "av_thickened", "aortic_stenosis")
        return
    if thickened:
        options = [
            "The aortic valve is trileaflet with thickened leaflets.",
            "The aortic valve leaflets are thickened and calcified.",
            "Sclerotic aortic valve.",
        ]
        if stenosis:
            options.append("The aortic valve is thickened with reduced leaflet excursion.")
        c.say(AV, c.pick(options), "av_thickened")
    elif not c.omit_normal():
        sentence = c.pick(
            (
                "The aortic valve is trileaflet and opens normally.",
                "Normal trileaflet aortic valve.",
                "Structurally normal aortic valve.",
            )
        )
        c.say(AV, sentence, "av_thickened")
    if stenosis == 0 and regurgitation == 0 and c.chance(0.5):
        c.say(AV, "No aortic stenosis or regurgitation.", "aortic_stenosis", "ar")
        return
    if stenosis:
        for sentence in _aortic_stenosis(c, stenosis):
            c.say(AV, sentence, "aortic_stenosis")
    elif not c.omit_normal():
        c.say(AV, c.pick(("No aortic stenosis.", "There is no aortic stenosis.")), "aortic_stenosis")
    if regurgitation >= 2 or (regurgitation == 1 and not c.chance(0.1)):
        c.say(AV, _aortic_regurgitation(c, regurgitation), "ar")
    elif regurgitation == 0 and not c.omit_normal():
        c.say(AV, _aortic_regurgitation(c, 0), "ar")


def _aortic_regurgitation(c: Composer, grade: int) -> str:
    if grade == 0:
        return c.pick(("No aortic regurgitation.", "Trace aortic regurgitation.", "No aortic insufficiency."))
    adj = ADJ[grade]
    return c.pick(
        (
            f"{cap(adj)} aortic regurgitation.",
            f"There is {adj} aortic regurgitation.",
            f"{cap(adj)} aortic insufficiency.",
        )
    )


def _aortic_stenosis(c: Composer, grade: int) -> list[str]:
    """The grade with Doppler numbers that belong to it (Vmax, mean and peak gradient, valve area)."""
    v_low, v_high = ((2.6, 2.9), (3.0, 3.9), (4.0, 5.0))[grade - 1]
    g_low, g_high = ((10, 19), (20, 39), (40, 70))[grade - 1]
    a_low, a_high = ((1.5, 2.0), (1.0, 1.4), (0.6, 0.9))[grade - 1]
    vmax = round(float(c.rng.uniform(v_low, v_high)), 1)
    mean = int(np.clip(half_up(2.3 * vmax**2), g_low, g_high))
    peak = half_up(4.0 * vmax**2)
    area = round(float(c.rng.uniform(a_low, a_high)), 1)
    adj = ADJ[grade]
    with_area = f", AVA {area:.1f} cm2" if c.chance(0.4) else ""
    return c.pick(
        (
            [f"{cap(adj)} aortic stenosis (AV Vmax {vmax:.1f} m/s, AV mean gradient {mean} mmHg{with_area})."],
            [
                f"There is {adj} aortic stenosis with a peak aortic velocity of {vmax:.1f} m/s "
                f"and a mean transaortic gradient of {mean} mmHg."
            ],
            [
                f"{cap(adj)} aortic stenosis.",
                f"Peak aortic velocity {vmax:.1f} m/s, AV peak gradient {peak} mmHg, "
                f"AV mean gradient {mean} mmHg{with_area}.",
            ],
        )
    )


def pulmonic_valve(c: Composer) -> None:
    if c.chance(0.6):
        sentence = c.pick(
            (
                "The pulmonic valve is not well visualized.",
                "Normal pulmonic valve.",
                "Trace pulmonic regurgitation.",
                "The pulmonic valve is grossly normal.",
            )
        )
        c.say(PV, sentence)
