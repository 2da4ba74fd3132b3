"""Sentences of the chamber sections: left ventricle (size, wall thickness, LVIDs, LVEF), regional wall
motion, right ventricle, atria and atrial septum."""

from __future__ import annotations

from rag.simulate.reports.composer import Composer
from rag.simulate.reports.wording import ADJ, ADV, cap, format_cm, stable_unit
from rag.vocab.cutoffs import LA_FLOOR, LA_LIMITS
from rag.vocab.sections import ATRIAL_SEPTUM, LA, LV, RA, RV, WALL_MOTION


def left_ventricle(c: Composer) -> None:
    s, g = c.study, c.grades
    size_g, wall_g = g["lvedd_cm"], g["wall_cm"]
    said_size = said_wall = False
    if size_g == 0 and wall_g == 0 and c.chance(0.4):
        if not c.omit_normal():
            c.say(
                LV,
                c.pick(
                    (
                        "The left ventricle is normal in size and wall thickness.",
                        "Normal left ventricular size and wall thickness.",
                        "Left ventricular cavity size and wall thickness are normal.",
                    )
                ),
                "lvedd_cm",
                "wall_cm",
            )
            said_size = said_wall = True
    else:
        if size_g or not c.omit_normal():
            c.say(LV, _lv_size(c, size_g), "lvedd_cm")
            said_size = True
        if wall_g or not c.omit_normal():
            c.say(LV, _lv_wall(c, wall_g), "wall_cm")
            said_wall = True
    numbers = []
    if said_size and c.chance(0.55):
        numbers += [f"LVIDd {format_cm(s.lvedd_cm)} cm", f"LVIDs {format_cm(s.lvesd_cm)} cm"]
        c.mentioned.update(("lvedd_cm", "lvesd_cm"))
    if said_wall and c.chance(0.5):
        posterior = s.wall_cm + float(c.rng.normal(0.0, 0.04))
        numbers += [f"IVSd {format_cm(s.wall_cm)} cm", f"LVPWd {format_cm(posterior)} cm"]
    if numbers:
        c.say(LV, ", ".join(numbers) + ".")
    for sentence in _lv_function(c, g["lvef"]):
        c.say(LV, sentence, "lvef")


def _lv_size(c: Composer, grade: int) -> str:
    if grade == 0:
        return c.pick(
            (
                "The left ventricle is normal in size.",
                "Normal left ventricular cavity size.",
                "Left ventricular size is normal.",
                "The left ventricular cavity size is normal.",
            )
        )
    adv = ADV[grade]
    return c.pick(
        (
            f"The left ventricle is {adv} dilated.",
            f"{cap(adv)} dilated left ventricle.",
            f"The left ventricular cavity is {adv} enlarged.",
        )
    )


def _lv_wall(c: Composer, grade: int) -> str:
    if grade == 0:
        return c.pick(
            (
                "Left ventricular wall thickness is normal.",
                "Normal left ventricular wall thickness.",
                "No left ventricular hypertrophy.",
            )
        )
    adj, adv = ADJ[grade], ADV[grade]
    return c.pick(
        (
            f"{cap(adj)} concentric left ventricular hypertrophy.",
            f"There is {adj} concentric left ventricular hypertrophy.",
            f"Left ventricular wall thickness is {adv} increased.",
        )
    )


def _lv_function(c: Composer, grade: int) -> list[str]:
    ef = c.lvef_text
    if grade == 0:
        return c.pick(
            (
                [f"Normal left ventricular systolic function with an estimated ejection fraction of {ef}."],
                ["Left ventricular systolic function is normal.", f"LVEF {ef}."],
                [f"The left ventricular ejection fraction is estimated at {ef}, within normal limits."],
                [f"Preserved left ventricular systolic function, LVEF {ef}."],
                [f"Normal LV systolic function. Ejection fraction is visually estimated at {ef}."],
            )
        )
    adv = ADV[grade]
    adj = c.pick(("reduced", "reduced", "depressed", "impaired"))
    return c.pick(
        (
            [f"{cap(adv)} {adj} left ventricular systolic function with an estimated ejection fraction of {ef}."],
            [f"Left ventricular systolic function is {adv} {adj}.", f"LVEF {ef}."],
            [f"The left ventricular ejection fraction is {adv} reduced at {ef}."],
            [f"Ejection fraction {ef}, consistent with {adv} {adj} LV systolic function."],
        )
    )


def wall_motion(c: Composer) -> None:
    motion = c.study.wall_motion
    if motion == "normal":
        if not c.omit_normal():
            sentence = c.pick(
                (
                    "No regional wall motion abnormalities.",
                    "Regional wall motion is normal.",
                    "Normal segmental wall motion.",
                    "No regional wall motion abnormality is seen.",
                )
            )
            c.say(WALL_MOTION, sentence, "wall_motion")
        return
    words = motion.split()
    options = [f"{cap(motion)}.", f"There is {motion}."]
    if len(words) == 2 and words[0] == "global":
        options.append(f"{cap(words[1])} is global.")
        options.append(f"Global {words[1]} of the left ventricle.")
    elif len(words) == 2:
        options.append(f"{cap(words[1])} of the {words[0]} wall.")
    c.say(WALL_MOTION, c.pick(options), "wall_motion")


def right_ventricle(c: Composer) -> None:
    size_g, reduced = c.study.rv_dilation, c.study.rv_dysfunction
    if size_g == 0 and not reduced and c.chance(0.5):
        if not c.omit_normal():
            sentence = c.pick(
                (
                    "The right ventricle is normal in size and systolic function.",
                    "Normal right ventricular size and systolic function.",
                    "Right ventricular size and function are normal.",
                )
            )
            c.say(RV, sentence, "rv_dilation", "rv_dysfunction")
        return
    if size_g or not c.omit_normal():
        if size_g == 0:
            sentence = c.pick(("The right ventricle is normal in size.", "Normal right ventricular size."))
        else:
            adv = ADV[size_g]
            sentence = c.pick(
                (
                    f"The right ventricle is {adv} dilated.",
                    f"{cap(adv)} dilated right ventricle.",
                    f"Right ventricular size is {adv} increased.",
                )
            )
        c.say(RV, sentence, "rv_dilation")
    if reduced or not c.omit_normal():
        tapse = (
            10.0 + 6.0 * stable_unit(c.patient, "tapse-low")
            if reduced
            else 18.0 + 7.0 * stable_unit(c.patient, "tapse")
        )
        with_tapse = f" (TAPSE {tapse:.0f} mm)" if c.chance(0.35) else ""
        if reduced:
            sentence = c.pick(
                (
                    f"Right ventricular systolic function is reduced{with_tapse}.",
                    f"Reduced right ventricular systolic function{with_tapse}.",
                    f"RV systolic function is depressed{with_tapse}.",
                )
            )
        else:
            sentence = c.pick(
                (
                    f"Right ventricular systolic function is normal{with_tapse}.",
                    f"Normal right ventricular systolic function{with_tapse}.",
                )
            )
        c.say(RV, sentence, "rv_dysfunction")


def atria(c: Composer) -> None:
    la_g, ra_g = c.study.la_dilation, c.study.ra_dilation
    if la_g or not c.omit_normal():
        diameter = ""
        if c.chance(0.45):
            limits = LA_LIMITS[c.sex]
            low = LA_FLOOR[c.sex] if la_g == 0 else limits[la_g - 1] + 1
            high = limits[la_g] if la_g < 3 else limits[2] + 7
            tenths = low + round((high - low) * stable_unit(c.patient, f"la{la_g}"))
            diameter = f"{tenths / 10:.1f} cm"
        if la_g == 0:
            options = [
                "The left atrium is normal in size.",
                "Normal left atrial size.",
                "Left atrial size is normal.",
            ]
            if diameter:
                options = [
                    f"The left atrium is normal in size (LA diameter {diameter}).",
                    f"Normal left atrial size, LA diameter {diameter}.",
                ]
        else:
            adv, adj = ADV[la_g], ADJ[la_g]
            options = [
                f"The left atrium is {adv} dilated.",
                f"{cap(adv)} dilated left atrium.",
                f"{cap(adj)} left atrial enlargement.",
            ]
            if diameter:
                options = [f"{o[:-1]} (LA diameter {diameter})." for o in options]
        c.say(LA, c.pick(options), "la_dilation")
    if ra_g or not c.omit_normal():
        if ra_g == 0:
            options = [
                "The right atrium is normal in size.",
                "Normal right atrial size.",
                "Right atrial size is normal.",
            ]
        else:
            adv, adj = ADV[ra_g], ADJ[ra_g]
            options = [
                f"The right atrium is {adv} dilated.",
                f"{cap(adv)} dilated right atrium.",
                f"{cap(adj)} right atrial enlargement.",
            ]
        c.say(RA, c.pick(options), "ra_dilation")


def atrial_septum(c: Composer) -> None:
    if c.chance(0.65):
        sentence = c.pick(
            (
                "The interatrial septum is intact.",
                "Intact interatrial septum by color Doppler.",
                "The atrial septum is not well visualized.",
                "No atrial septal defect by color Doppler.",
            )
        )
        c.say(ATRIAL_SEPTUM, sentence)
