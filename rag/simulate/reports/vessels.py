"""Sentences of the pericardium and vessel sections: pericardial effusion, aortic root, IVC with the
right atrial pressure it implies, pulmonary artery pressure and pulmonary veins."""

from __future__ import annotations

import math

from rag.simulate.reports.composer import Composer
from rag.simulate.reports.wording import ADJ, ADV, cap, stable_unit
from rag.simulate.truth import EFFUSION_GRADES
from rag.vocab.cutoffs import half_up
from rag.vocab.sections import AORTA, IVC, PA, PERICARDIUM, PULMONARY_VEINS


def pericardium(c: Composer) -> None:
    grade = c.study.effusion
    if grade == 0:
        if not c.omit_normal():
            sentence = c.pick(
                (
                    "No pericardial effusion.",
                    "There is no pericardial effusion.",
                    "The pericardium is normal without effusion.",
                )
            )
            c.say(PERICARDIUM, sentence, "effusion")
        return
    size = EFFUSION_GRADES[grade]
    depth = (0.4, 1.0, 2.0)[grade - 1] + 0.5 * float(c.rng.random())
    options = [
        f"A {size} pericardial effusion is present.",
        f"There is a {size} circumferential pericardial effusion.",
        f"{cap(size)} pericardial effusion measuring up to {depth:.1f} cm in diastole.",
    ]
    if grade < 3:
        options.append(f"{cap(size)} pericardial effusion without echocardiographic evidence of tamponade.")
    c.say(PERICARDIUM, c.pick(options), "effusion")


def aorta(c: Composer) -> None:
    if not c.chance(0.65):
        return
    base, span = (2.9, 0.7) if c.sex == "M" else (2.6, 0.6)
    root = base + span * stable_unit(c.patient, "aortic-root")
    sentence = c.pick(
        (
            f"The aortic root is normal in size ({root:.1f} cm).",
            "Normal aortic root dimensions.",
            "The aortic root and ascending aorta are normal in size.",
            f"Aortic root diameter {root:.1f} cm, within normal limits.",
        )
    )
    c.say(AORTA, sentence)


def _right_atrial_pressure(c: Composer) -> int:
    if c.study.ivc_dilated and not c.study.ivc_collapse:
        return 15
    if c.study.ivc_dilated or not c.study.ivc_collapse:
        return 8
    return 3


def ivc(c: Composer) -> None:
    s = c.study
    if not s.ivc_dilated and s.ivc_collapse and c.omit_normal():
        return
    low, span = (2.2, 0.7) if s.ivc_dilated else (1.3, 0.7)
    diameter = f"{low + span * stable_unit(c.patient, f'ivc{s.ivc_dilated}'):.1f} cm"
    size = "dilated" if s.ivc_dilated else "normal in size"
    collapse = c.pick(("greater than 50%", ">50%") if s.ivc_collapse else ("less than 50%", "<50%"))
    rap = _right_atrial_pressure(c)
    options = [
        f"The inferior vena cava is {size} with {collapse} inspiratory collapse, "
        f"consistent with a right atrial pressure of {rap} mmHg.",
        f"The IVC is {size} ({diameter}) with {collapse} respiratory collapse.",
        f"IVC {diameter}, {size}, with {collapse} collapse on sniff.",
    ]
    if not s.ivc_dilated and s.ivc_collapse:
        options.append("Normal IVC size and collapsibility.")
    sentence = c.pick(options)
    c.say(IVC, sentence, "ivc_dilated", "ivc_collapse")
    if "right atrial pressure" not in sentence and c.chance(0.7):
        c.say(IVC, f"Estimated RA pressure {rap} mmHg.")


def pulmonary_artery(c: Composer) -> None:
    s = c.study
    grade = c.grades["pasp_mmhg"]
    pasp = half_up(s.pasp_mmhg)
    if grade == 0:
        if s.tr == 0 and c.chance(0.25):
            c.say(
                PA,
                "Pulmonary artery systolic pressure could not be estimated due to an inadequate tricuspid "
                "regurgitation jet.",
            )
            return
        if c.omit_normal():
            return
    rap = _right_atrial_pressure(c)
    detail = ""
    if c.chance(0.35):
        tr_velocity = math.sqrt(max(s.pasp_mmhg - rap, 4.0) / 4.0)
        detail = f" (peak TR velocity {tr_velocity:.1f} m/s, RA pressure {rap} mmHg)"
    if grade == 0:
        options = [
            f"Normal pulmonary artery systolic pressure ({pasp} mmHg).",
            f"Estimated PASP {pasp} mmHg{detail}.",
            f"The pulmonary artery systolic pressure is estimated at {pasp} mmHg{detail}, within normal limits.",
        ]
    else:
        adv, adj = ADV[grade], ADJ[grade]
        options = [
            f"{cap(adv)} elevated pulmonary artery systolic pressure, estimated at {pasp} mmHg{detail}.",
            f"Estimated PASP {pasp} mmHg{detail}, consistent with {adj} pulmonary hypertension.",
            f"The pulmonary artery systolic pressure is {adv} elevated at {pasp} mmHg{detail}.",
        ]
    c.say(PA, c.pick(options), "pasp_mmhg")


def pulmonary_veins(c: Composer) -> None:
    if c.chance(0.35):
        sentence = c.pick(
            (
                "Normal pulmonary venous flow pattern.",
                "Pulmonary venous flow is normal.",
                "Normal pulmonary venous flow.",
            )
        )
        c.say(PULMONARY_VEINS, sentence)
