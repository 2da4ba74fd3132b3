"""Echo report text for the simulated archive, written from the ground truth.

Each report has a header that names the patient (name, MRN, study date: the identifiers that
de-identification must scrub), an indication, the 15 anatomical sections of ``ECHO_SECTIONS`` in
order, optionally a conclusion, and, for a follow-up study, a comparison with the prior study built
from :func:`rag.simulate.truth.changes`. Phrasing, heading style, number formatting and which normal
findings are left unsaid all vary with the random generator, as they do between readers; abnormal
findings are always stated (a mild regurgitation is occasionally left out, as in practice).

Severity follows the ASE chamber quantification cut-offs (sex-specific for LV diameter, wall thickness,
LA diameter and LVEF). :class:`SimReport` records which truth fields the text states and the text of
each anatomical section, so that the parser, the measurement reader and the benchmarks can be scored
against it. The same generator state always gives the same text.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, TypeVar

import numpy as np

from rag.ingest.sections import (
    AORTA,
    ATRIAL_SEPTUM,
    AV,
    ECHO_SECTIONS,
    FREE_TEXT,
    IVC,
    LA,
    LV,
    MV,
    PA,
    PERICARDIUM,
    PULMONARY_VEINS,
    PV,
    RA,
    RV,
    TV,
    WALL_MOTION,
)
from rag.simulate.truth import EFFUSION_GRADES, GRADES, Course, PatientTruth, StudyTruth, changes

__all__ = [
    "FINDING_SECTIONS",
    "REPORT_STYLES",
    "SimReport",
    "finding_grades",
    "la_diameter_grade",
    "lv_size_grade",
    "lvef_grade",
    "pasp_grade",
    "wall_thickness_grade",
    "write_patient_reports",
    "write_report",
]


FINDING_SECTIONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "lvef": LV,
        "lvedd_cm": LV,
        "lvesd_cm": LV,
        "wall_cm": LV,
        "wall_motion": WALL_MOTION,
        "rv_dilation": RV,
        "rv_dysfunction": RV,
        "la_dilation": LA,
        "ra_dilation": RA,
        "mr": MV,
        "aortic_stenosis": AV,
        "ar": AV,
        "av_thickened": AV,
        "tr": TV,
        "effusion": PERICARDIUM,
        "ivc_dilated": IVC,
        "ivc_collapse": IVC,
        "pasp_mmhg": PA,
        "heart_rate": FREE_TEXT,
    }
)
"""Truth field -> the section of the report that states it (the heart rate is in the header)."""

REPORT_STYLES: Final[tuple[str, ...]] = ("colon", "block", "markdown", "dash", "prose")
"""How sections are laid out: ``Left Ventricle: ...``, a heading line, ``## LV``, ``LV - ...``, or
unheaded prose whose sentences the parser classifies by the anatomy they name."""

_ADJ: Final = ("normal", "mild", "moderate", "severe")
_ADV: Final = ("normal", "mildly", "moderately", "severely")
_MONTHS = tuple(calendar.month_name[1:])

# Upper limits (in tenths of a cm) of normal, mild and moderate; above the last is severe.
# ASE chamber quantification: LV end-diastolic diameter, septal/posterior wall thickness, LA diameter.
_LV_DIAMETER_LIMITS: Final = {"M": (58, 63, 68), "F": (52, 56, 61)}
_WALL_LIMITS: Final = {"M": (10, 13, 16), "F": (9, 12, 15)}
_LA_LIMITS: Final = {"M": (40, 46, 51), "F": (38, 42, 46)}
_LA_FLOOR: Final = {"M": 30, "F": 27}
_LVEF_NORMAL: Final = {"M": 52, "F": 54}

_T = TypeVar("_T")


@dataclass(frozen=True)
class SimReport:
    """One simulated echo report and its answer key.

    ``mentioned`` holds the :class:`~rag.simulate.truth.StudyTruth` field names the text states
    (``"lvesd_cm"`` for the derived LVIDs, ``"heart_rate"`` when the header gives it); a field not in
    it is simply not written, as normal findings often are not. ``sections`` maps each anatomical
    section written to its text, sentences joined by single spaces, exactly as
    :func:`rag.ingest.sections.parse_echo_report` should return it; header, indication, comparison and
    conclusion are Free Text and not in it.
    """

    text: str
    mentioned: frozenset[str]
    sections: Mapping[str, str]
    style: str


# --------------------------------------------------------------------------------------------------
# Severity grades (0 normal, 1 mild, 2 moderate, 3 severe)
# --------------------------------------------------------------------------------------------------


def _half_up(value: float) -> int:
    return math.floor(value + 0.5)


def _tenths(value_cm: float) -> int:
    return _half_up(value_cm * 10.0)


def _cm(value_cm: float) -> str:
    """A length as written, to 0.1 cm, rounded the same way as the grades are."""
    return f"{_tenths(value_cm) / 10:.1f}"


def _graded(tenths: int, limits: tuple[int, int, int]) -> int:
    return sum(tenths > limit for limit in limits)


def _sex(sex: str) -> str:
    if sex not in ("M", "F"):
        raise ValueError(f"sex must be 'M' or 'F', got {sex!r}")
    return sex


def lv_size_grade(lvedd_cm: float, sex: str) -> int:
    """LV dilation 0-3 from the end-diastolic diameter as written (rounded to 0.1 cm), ASE sex-specific."""
    return _graded(_tenths(lvedd_cm), _LV_DIAMETER_LIMITS[_sex(sex)])


def wall_thickness_grade(wall_cm: float, sex: str) -> int:
    """LV hypertrophy 0-3 from septal/posterior wall thickness (rounded to 0.1 cm), ASE sex-specific."""
    return _graded(_tenths(wall_cm), _WALL_LIMITS[_sex(sex)])


def la_diameter_grade(la_cm: float, sex: str) -> int:
    """LA enlargement 0-3 from the antero-posterior LA diameter (rounded to 0.1 cm), ASE sex-specific."""
    return _graded(_tenths(la_cm), _LA_LIMITS[_sex(sex)])


def lvef_grade(lvef: float, sex: str) -> int:
    """LV systolic dysfunction 0-3 from the LVEF in % (rounded to an integer).

    ASE: normal from 52 % (men) or 54 % (women); mildly reduced down to 41 %, moderately 30-40 %,
    severely below 30 %.
    """
    value = _half_up(lvef)
    if value >= _LVEF_NORMAL[_sex(sex)]:
        return 0
    if value >= 41:
        return 1
    return 2 if value >= 30 else 3


def pasp_grade(pasp_mmhg: float) -> int:
    """Pulmonary hypertension 0-3 from the PASP in mmHg (rounded): up to 35 normal, 36-49 mild,
    50-59 moderate, 60 and above severe."""
    value = _half_up(pasp_mmhg)
    return sum(value > limit for limit in (35, 49, 59))


def finding_grades(patient: PatientTruth, study: StudyTruth) -> dict[str, int]:
    """Each finding of ``study`` as 0 (normal) or its abnormality grade 1-3 (booleans give 1).

    Keys are the truth fields of :data:`FINDING_SECTIONS` except the derived LVIDs and the heart rate;
    ``ivc_collapse`` is 1 when the inspiratory collapse is reduced (<50 %).
    """
    sex = patient.sex
    return {
        "lvef": lvef_grade(study.lvef, sex),
        "lvedd_cm": lv_size_grade(study.lvedd_cm, sex),
        "wall_cm": wall_thickness_grade(study.wall_cm, sex),
        "wall_motion": int(study.wall_motion != "normal"),
        "rv_dilation": study.rv_dilation,
        "rv_dysfunction": int(study.rv_dysfunction),
        "la_dilation": study.la_dilation,
        "ra_dilation": study.ra_dilation,
        "mr": study.mr,
        "aortic_stenosis": study.aortic_stenosis,
        "ar": study.ar,
        "av_thickened": int(study.av_thickened),
        "tr": study.tr,
        "effusion": study.effusion,
        "ivc_dilated": int(study.ivc_dilated),
        "ivc_collapse": int(not study.ivc_collapse),
        "pasp_mmhg": pasp_grade(study.pasp_mmhg),
    }


# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------


def _pick(rng: np.random.Generator, options: Sequence[_T]) -> _T:
    return options[int(rng.integers(len(options)))]


def _chance(rng: np.random.Generator, p: float) -> bool:
    return bool(rng.random() < p)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _stable_unit(patient: PatientTruth, key: str) -> float:
    """A number in [0, 1) fixed for the patient, so a dimension that does not change stays put between studies."""
    return zlib.crc32(f"{patient.patient_id}/{key}".encode()) / 2**32


def _join_clauses(clauses: Sequence[str]) -> str:
    if len(clauses) == 1:
        return clauses[0]
    return ", ".join(clauses[:-1]) + " and " + clauses[-1]


_DATE_STYLES: Final = 5


def _format_date(date: dt.date, style: int) -> str:
    """``date`` in one of the ``_DATE_STYLES`` forms readers use (all of which de-identification finds)."""
    month = _MONTHS[date.month - 1]
    if style == 0:
        return date.isoformat()
    if style == 1:
        return f"{date.month:02d}/{date.day:02d}/{date.year}"
    if style == 2:
        return f"{month[:3]} {date.day}, {date.year}"
    if style == 3:
        return f"{date.day} {month} {date.year}"
    return f"{date.day:02d}-{month[:3]}-{date.year}"


def _lvef_display(lvef: float, sex: str, rng: np.random.Generator) -> str:
    """The LVEF as a reader writes it: exact, to the nearest 5 %, or a 5 % range, never changing its grade."""
    exact = _half_up(lvef)
    form = int(rng.choice(3, p=[0.4, 0.35, 0.25]))
    if form == 1:
        rounded = 5 * _half_up(lvef / 5.0)
        if lvef_grade(rounded, sex) == lvef_grade(exact, sex):
            return f"{rounded}%"
    elif form == 2:
        low = 5 * math.floor(lvef / 5.0)
        if lvef_grade(low + 2.5, sex) == lvef_grade(exact, sex):
            return f"{low}{_pick(rng, ('-', '-', ' to '))}{low + 5}%"
    return f"{exact}%"


# --------------------------------------------------------------------------------------------------
# Sentences, section by section
# --------------------------------------------------------------------------------------------------


class _Composer:
    """Collects the sentences of one report per section, and the truth fields they state."""

    def __init__(self, patient: PatientTruth, study: StudyTruth, rng: np.random.Generator) -> None:
        self.patient = patient
        self.study = study
        self.rng = rng
        self.sex = _sex(patient.sex)
        self.grades = finding_grades(patient, study)
        self.sections: dict[str, list[str]] = {}
        self.mentioned: set[str] = set()
        # How terse this reader is: the chance of leaving out a normal statement.
        self.p_omit = float(rng.uniform(0.15, 0.45))
        self.lvef_text = _lvef_display(study.lvef, self.sex, rng)

    def pick(self, options: Sequence[_T]) -> _T:
        return _pick(self.rng, options)

    def chance(self, p: float) -> bool:
        return _chance(self.rng, p)

    def omit_normal(self) -> bool:
        return self.chance(self.p_omit)

    def say(self, section: str, sentence: str, *fields: str) -> None:
        self.sections.setdefault(section, []).append(sentence)
        self.mentioned.update(fields)

    # -- left ventricle -------------------------------------------------------------------------

    def left_ventricle(self) -> None:
        s, g = self.study, self.grades
        size_g, wall_g = g["lvedd_cm"], g["wall_cm"]
        said_size = said_wall = False
        if size_g == 0 and wall_g == 0 and self.chance(0.4):
            if not self.omit_normal():
                self.say(
                    LV,
                    self.pick(
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
            if size_g or not self.omit_normal():
                self.say(LV, self._lv_size(size_g), "lvedd_cm")
                said_size = True
            if wall_g or not self.omit_normal():
                self.say(LV, self._lv_wall(wall_g), "wall_cm")
                said_wall = True
        numbers = []
        if said_size and self.chance(0.55):
            numbers += [f"LVIDd {_cm(s.lvedd_cm)} cm", f"LVIDs {_cm(s.lvesd_cm)} cm"]
            self.mentioned.update(("lvedd_cm", "lvesd_cm"))
        if said_wall and self.chance(0.5):
            posterior = s.wall_cm + float(self.rng.normal(0.0, 0.04))
            numbers += [f"IVSd {_cm(s.wall_cm)} cm", f"LVPWd {_cm(posterior)} cm"]
        if numbers:
            self.say(LV, ", ".join(numbers) + ".")
        for sentence in self._lv_function(g["lvef"]):
            self.say(LV, sentence, "lvef")

    def _lv_size(self, grade: int) -> str:
        if grade == 0:
            return self.pick(
                (
                    "The left ventricle is normal in size.",
                    "Normal left ventricular cavity size.",
                    "Left ventricular size is normal.",
                    "The left ventricular cavity size is normal.",
                )
            )
        adv = _ADV[grade]
        return self.pick(
            (
                f"The left ventricle is {adv} dilated.",
                f"{_cap(adv)} dilated left ventricle.",
                f"The left ventricular cavity is {adv} enlarged.",
            )
        )

    def _lv_wall(self, grade: int) -> str:
        if grade == 0:
            return self.pick(
                (
                    "Left ventricular wall thickness is normal.",
                    "Normal left ventricular wall thickness.",
                    "No left ventricular hypertrophy.",
                )
            )
        adj, adv = _ADJ[grade], _ADV[grade]
        return self.pick(
            (
                f"{_cap(adj)} concentric left ventricular hypertrophy.",
                f"There is {adj} concentric left ventricular hypertrophy.",
                f"Left ventricular wall thickness is {adv} increased.",
            )
        )

    def _lv_function(self, grade: int) -> list[str]:
        ef = self.lvef_text
        if grade == 0:
            return self.pick(
                (
                    [f"Normal left ventricular systolic function with an estimated ejection fraction of {ef}."],
                    ["Left ventricular systolic function is normal.", f"LVEF {ef}."],
                    [f"The left ventricular ejection fraction is estimated at {ef}, within normal limits."],
                    [f"Preserved left ventricular systolic function, LVEF {ef}."],
                    [f"Normal LV systolic function. Ejection fraction is visually estimated at {ef}."],
                )
            )
        adv = _ADV[grade]
        adj = self.pick(("reduced", "reduced", "depressed", "impaired"))
        return self.pick(
            (
                [f"{_cap(adv)} {adj} left ventricular systolic function with an estimated ejection fraction of {ef}."],
                [f"Left ventricular systolic function is {adv} {adj}.", f"LVEF {ef}."],
                [f"The left ventricular ejection fraction is {adv} reduced at {ef}."],
                [f"Ejection fraction {ef}, consistent with {adv} {adj} LV systolic function."],
            )
        )

    # -- wall motion, right heart, atria --------------------------------------------------------

    def wall_motion(self) -> None:
        motion = self.study.wall_motion
        if motion == "normal":
            if not self.omit_normal():
                sentence = self.pick(
                    (
                        "No regional wall motion abnormalities.",
                        "Regional wall motion is normal.",
                        "Normal segmental wall motion.",
                        "No regional wall motion abnormality is seen.",
                    )
                )
                self.say(WALL_MOTION, sentence, "wall_motion")
            return
        words = motion.split()
        options = [f"{_cap(motion)}.", f"There is {motion}."]
        if len(words) == 2 and words[0] == "global":
            options.append(f"{_cap(words[1])} is global.")
            options.append(f"Global {words[1]} of the left ventricle.")
        elif len(words) == 2:
            options.append(f"{_cap(words[1])} of the {words[0]} wall.")
        self.say(WALL_MOTION, self.pick(options), "wall_motion")

    def right_ventricle(self) -> None:
        size_g, reduced = self.study.rv_dilation, self.study.rv_dysfunction
        if size_g == 0 and not reduced and self.chance(0.5):
            if not self.omit_normal():
                sentence = self.pick(
                    (
                        "The right ventricle is normal in size and systolic function.",
                        "Normal right ventricular size and systolic function.",
                        "Right ventricular size and function are normal.",
                    )
                )
                self.say(RV, sentence, "rv_dilation", "rv_dysfunction")
            return
        if size_g or not self.omit_normal():
            if size_g == 0:
                sentence = self.pick(("The right ventricle is normal in size.", "Normal right ventricular size."))
            else:
                adv = _ADV[size_g]
                sentence = self.pick(
                    (
                        f"The right ventricle is {adv} dilated.",
                        f"{_cap(adv)} dilated right ventricle.",
                        f"Right ventricular size is {adv} increased.",
                    )
                )
            self.say(RV, sentence, "rv_dilation")
        if reduced or not self.omit_normal():
            tapse = (
                10.0 + 6.0 * _stable_unit(self.patient, "tapse-low")
                if reduced
                else 18.0 + 7.0 * _stable_unit(self.patient, "tapse")
            )
            with_tapse = f" (TAPSE {tapse:.0f} mm)" if self.chance(0.35) else ""
            if reduced:
                sentence = self.pick(
                    (
                        f"Right ventricular systolic function is reduced{with_tapse}.",
                        f"Reduced right ventricular systolic function{with_tapse}.",
                        f"RV systolic function is depressed{with_tapse}.",
                    )
                )
            else:
                sentence = self.pick(
                    (
                        f"Right ventricular systolic function is normal{with_tapse}.",
                        f"Normal right ventricular systolic function{with_tapse}.",
                    )
                )
            self.say(RV, sentence, "rv_dysfunction")

    def atria(self) -> None:
        la_g, ra_g = self.study.la_dilation, self.study.ra_dilation
        if la_g or not self.omit_normal():
            diameter = ""
            if self.chance(0.45):
                limits = _LA_LIMITS[self.sex]
                low = _LA_FLOOR[self.sex] if la_g == 0 else limits[la_g - 1] + 1
                high = limits[la_g] if la_g < 3 else limits[2] + 7
                tenths = low + round((high - low) * _stable_unit(self.patient, f"la{la_g}"))
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
                adv, adj = _ADV[la_g], _ADJ[la_g]
                options = [
                    f"The left atrium is {adv} dilated.",
                    f"{_cap(adv)} dilated left atrium.",
                    f"{_cap(adj)} left atrial enlargement.",
                ]
                if diameter:
                    options = [f"{o[:-1]} (LA diameter {diameter})." for o in options]
            self.say(LA, self.pick(options), "la_dilation")
        if ra_g or not self.omit_normal():
            if ra_g == 0:
                options = [
                    "The right atrium is normal in size.",
                    "Normal right atrial size.",
                    "Right atrial size is normal.",
                ]
            else:
                adv, adj = _ADV[ra_g], _ADJ[ra_g]
                options = [
                    f"The right atrium is {adv} dilated.",
                    f"{_cap(adv)} dilated right atrium.",
                    f"{_cap(adj)} right atrial enlargement.",
                ]
            self.say(RA, self.pick(options), "ra_dilation")

    def atrial_septum(self) -> None:
        if self.chance(0.65):
            sentence = self.pick(
                (
                    "The interatrial septum is intact.",
                    "Intact interatrial septum by color Doppler.",
                    "The atrial septum is not well visualized.",
                    "No atrial septal defect by color Doppler.",
                )
            )
            self.say(ATRIAL_SEPTUM, sentence)

    # -- valves -----------------------------------------------------------------------------------

    def _regurgitation(self, grade: int, valve: str, abbreviation: str) -> str:
        if grade == 0:
            return self.pick(
                (
                    f"No {valve} regurgitation.",
                    f"Trace {valve} regurgitation.",
                    f"No significant {valve} regurgitation.",
                    f"Trace {abbreviation}.",
                )
            )
        adj = _ADJ[grade]
        return self.pick(
            (
                f"{_cap(adj)} {valve} regurgitation.",
                f"There is {adj} {valve} regurgitation.",
                f"{_cap(adj)} {abbreviation}.",
                f"{_cap(valve)} regurgitation is {adj}.",
            )
        )

    def _atrioventricular_valve(self, section: str, field: str, valve: str, abbreviation: str) -> None:
        grade: int = getattr(self.study, field)
        say_grade = grade >= 2 or (grade == 1 and not self.chance(0.1)) or (grade == 0 and not self.omit_normal())
        if not say_grade:
            return
        if self.chance(0.5):
            structure = self.pick(
                (
                    f"The {valve} valve is structurally normal.",
                    f"{_cap(valve)} valve leaflets are thin and mobile.",
                    f"Normal {valve} valve morphology.",
                )
            )
            self.say(section, structure)
        self.say(section, self._regurgitation(grade, valve, abbreviation), field)

    def mitral_valve(self) -> None:
        self._atrioventricular_valve(MV, "mr", "mitral", "MR")

    def tricuspid_valve(self) -> None:
        self._atrioventricular_valve(TV, "tr", "tricuspid", "TR")

    def aortic_valve(self) -> None:
        s = self.study
        stenosis, regurgitation, thickened = s.aortic_stenosis, s.ar, s.av_thickened
        if stenosis == 0 and regurgitation == 0 and not thickened and self.omit_normal():
            return
        if thickened and stenosis == 0 and regurgitation == 0 and self.chance(0.4):
            self.say(AV, "Aortic valve sclerosis without stenosis.", "av_thickened", "aortic_stenosis")
            return
        if thickened:
            options = [
                "The aortic valve is trileaflet with thickened leaflets.",
                "The aortic valve leaflets are thickened and calcified.",
                "Sclerotic aortic valve.",
            ]
            if stenosis:
                options.append("The aortic valve is thickened with reduced leaflet excursion.")
            self.say(AV, self.pick(options), "av_thickened")
        elif not self.omit_normal():
            sentence = self.pick(
                (
                    "The aortic valve is trileaflet and opens normally.",
                    "Normal trileaflet aortic valve.",
                    "Structurally normal aortic valve.",
                )
            )
            self.say(AV, sentence, "av_thickened")
        if stenosis == 0 and regurgitation == 0 and self.chance(0.5):
            self.say(AV, "No aortic stenosis or regurgitation.", "aortic_stenosis", "ar")
            return
        if stenosis:
            for sentence in self._aortic_stenosis(stenosis):
                self.say(AV, sentence, "aortic_stenosis")
        elif not self.omit_normal():
            self.say(AV, self.pick(("No aortic stenosis.", "There is no aortic stenosis.")), "aortic_stenosis")
        if regurgitation >= 2 or (regurgitation == 1 and not self.chance(0.1)):
            self.say(AV, self._aortic_regurgitation(regurgitation), "ar")
        elif regurgitation == 0 and not self.omit_normal():
            self.say(AV, self._aortic_regurgitation(0), "ar")

    def _aortic_regurgitation(self, grade: int) -> str:
        if grade == 0:
            return self.pick(("No aortic regurgitation.", "Trace aortic regurgitation.", "No aortic insufficiency."))
        adj = _ADJ[grade]
        return self.pick(
            (
                f"{_cap(adj)} aortic regurgitation.",
                f"There is {adj} aortic regurgitation.",
                f"{_cap(adj)} aortic insufficiency.",
            )
        )

    def _aortic_stenosis(self, grade: int) -> list[str]:
        """The grade with Doppler numbers that belong to it (Vmax, mean and peak gradient, valve area)."""
        v_low, v_high = ((2.6, 2.9), (3.0, 3.9), (4.0, 5.0))[grade - 1]
        g_low, g_high = ((10, 19), (20, 39), (40, 70))[grade - 1]
        a_low, a_high = ((1.5, 2.0), (1.0, 1.4), (0.6, 0.9))[grade - 1]
        vmax = round(float(self.rng.uniform(v_low, v_high)), 1)
        mean = int(np.clip(_half_up(2.3 * vmax**2), g_low, g_high))
        peak = _half_up(4.0 * vmax**2)
        area = round(float(self.rng.uniform(a_low, a_high)), 1)
        adj = _ADJ[grade]
        with_area = f", AVA {area:.1f} cm2" if self.chance(0.4) else ""
        return self.pick(
            (
                [f"{_cap(adj)} aortic stenosis (AV Vmax {vmax:.1f} m/s, AV mean gradient {mean} mmHg{with_area})."],
                [
                    f"There is {adj} aortic stenosis with a peak aortic velocity of {vmax:.1f} m/s "
                    f"and a mean transaortic gradient of {mean} mmHg."
                ],
                [
                    f"{_cap(adj)} aortic stenosis.",
                    f"Peak aortic velocity {vmax:.1f} m/s, AV peak gradient {peak} mmHg, "
                    f"AV mean gradient {mean} mmHg{with_area}.",
                ],
            )
        )

    def pulmonic_valve(self) -> None:
        if self.chance(0.6):
            sentence = self.pick(
                (
                    "The pulmonic valve is not well visualized.",
                    "Normal pulmonic valve.",
                    "Trace pulmonic regurgitation.",
                    "The pulmonic valve is grossly normal.",
                )
            )
            self.say(PV, sentence)

    # -- pericardium, great vessels ---------------------------------------------------------------

    def pericardium(self) -> None:
        grade = self.study.effusion
        if grade == 0:
            if not self.omit_normal():
                sentence = self.pick(
                    (
                        "No pericardial effusion.",
                        "There is no pericardial effusion.",
                        "The pericardium is normal without effusion.",
                    )
                )
                self.say(PERICARDIUM, sentence, "effusion")
            return
        size = EFFUSION_GRADES[grade]
        depth = (0.4, 1.0, 2.0)[grade - 1] + 0.5 * float(self.rng.random())
        options = [
            f"A {size} pericardial effusion is present.",
            f"There is a {size} circumferential pericardial effusion.",
            f"{_cap(size)} pericardial effusion measuring up to {depth:.1f} cm in diastole.",
        ]
        if grade < 3:
            options.append(f"{_cap(size)} pericardial effusion without echocardiographic evidence of tamponade.")
        self.say(PERICARDIUM, self.pick(options), "effusion")

    def aorta(self) -> None:
        if not self.chance(0.65):
            return
        base, span = (2.9, 0.7) if self.sex == "M" else (2.6, 0.6)
        root = base + span * _stable_unit(self.patient, "aortic-root")
        sentence = self.pick(
            (
                f"The aortic root is normal in size ({root:.1f} cm).",
                "Normal aortic root dimensions.",
                "The aortic root and ascending aorta are normal in size.",
                f"Aortic root diameter {root:.1f} cm, within normal limits.",
            )
        )
        self.say(AORTA, sentence)

    def right_atrial_pressure(self) -> int:
        if self.study.ivc_dilated and not self.study.ivc_collapse:
            return 15
        if self.study.ivc_dilated or not self.study.ivc_collapse:
            return 8
        return 3

    def ivc(self) -> None:
        s = self.study
        if not s.ivc_dilated and s.ivc_collapse and self.omit_normal():
            return
        low, span = (2.2, 0.7) if s.ivc_dilated else (1.3, 0.7)
        diameter = f"{low + span * _stable_unit(self.patient, f'ivc{s.ivc_dilated}'):.1f} cm"
        size = "dilated" if s.ivc_dilated else "normal in size"
        collapse = self.pick(("greater than 50%", ">50%") if s.ivc_collapse else ("less than 50%", "<50%"))
        rap = self.right_atrial_pressure()
        options = [
            f"The inferior vena cava is {size} with {collapse} inspiratory collapse, "
            f"consistent with a right atrial pressure of {rap} mmHg.",
            f"The IVC is {size} ({diameter}) with {collapse} respiratory collapse.",
            f"IVC {diameter}, {size}, with {collapse} collapse on sniff.",
        ]
        if not s.ivc_dilated and s.ivc_collapse:
            options.append("Normal IVC size and collapsibility.")
        sentence = self.pick(options)
        self.say(IVC, sentence, "ivc_dilated", "ivc_collapse")
        if "right atrial pressure" not in sentence and self.chance(0.7):
            self.say(IVC, f"Estimated RA pressure {rap} mmHg.")

    def pulmonary_artery(self) -> None:
        s = self.study
        grade = self.grades["pasp_mmhg"]
        pasp = _half_up(s.pasp_mmhg)
        if grade == 0:
            if s.tr == 0 and self.chance(0.25):
                self.say(
                    PA,
                    "Pulmonary artery systolic pressure could not be estimated due to an inadequate tricuspid "
                    "regurgitation jet.",
                )
                return
            if self.omit_normal():
                return
        rap = self.right_atrial_pressure()
        detail = ""
        if self.chance(0.35):
            tr_velocity = math.sqrt(max(s.pasp_mmhg - rap, 4.0) / 4.0)
            detail = f" (peak TR velocity {tr_velocity:.1f} m/s, RA pressure {rap} mmHg)"
        if grade == 0:
            options = [
                f"Normal pulmonary artery systolic pressure ({pasp} mmHg).",
                f"Estimated PASP {pasp} mmHg{detail}.",
                f"The pulmonary artery systolic pressure is estimated at {pasp} mmHg{detail}, within normal limits.",
            ]
        else:
            adv, adj = _ADV[grade], _ADJ[grade]
            options = [
                f"{_cap(adv)} elevated pulmonary artery systolic pressure, estimated at {pasp} mmHg{detail}.",
                f"Estimated PASP {pasp} mmHg{detail}, consistent with {adj} pulmonary hypertension.",
                f"The pulmonary artery systolic pressure is {adv} elevated at {pasp} mmHg{detail}.",
            ]
        self.say(PA, self.pick(options), "pasp_mmhg")

    def pulmonary_veins(self) -> None:
        if self.chance(0.35):
            sentence = self.pick(
                (
                    "Normal pulmonary venous flow pattern.",
                    "Pulmonary venous flow is normal.",
                    "Normal pulmonary venous flow.",
                )
            )
            self.say(PULMONARY_VEINS, sentence)

    def findings(self) -> None:
        """All sections, in ``ECHO_SECTIONS`` order."""
        self.left_ventricle()
        self.wall_motion()
        self.right_ventricle()
        self.atria()
        self.atrial_septum()
        self.mitral_valve()
        self.aortic_valve()
        self.tricuspid_valve()
        self.pulmonic_valve()
        self.pericardium()
        self.aorta()
        self.ivc()
        self.pulmonary_artery()
        self.pulmonary_veins()

    # -- conclusion ------------------------------------------------------------------------------

    def conclusion(self) -> list[str]:
        """Restates the key findings (all of them already stated in their sections)."""
        s, g = self.study, self.grades
        lines = []
        ef_grade = g["lvef"]
        if ef_grade == 0:
            lines.append(f"Normal left ventricular systolic function (LVEF {self.lvef_text}).")
        else:
            lines.append(f"{_cap(_ADV[ef_grade])} reduced left ventricular systolic function (LVEF {self.lvef_text}).")
        if g["lvedd_cm"]:
            lines.append(f"{_cap(_ADV[g['lvedd_cm']])} dilated left ventricle.")
        if g["wall_cm"]:
            lines.append(f"{_cap(_ADJ[g['wall_cm']])} concentric left ventricular hypertrophy.")
        if s.wall_motion != "normal":
            lines.append(f"{_cap(s.wall_motion)}.")
        if s.rv_dilation >= 2:
            lines.append(f"{_cap(_ADV[s.rv_dilation])} dilated right ventricle.")
        if s.rv_dysfunction:
            lines.append("Reduced right ventricular systolic function.")
        if s.la_dilation >= 2:
            lines.append(f"{_cap(_ADV[s.la_dilation])} dilated left atrium.")
        for field, name in (
            ("mr", "mitral regurgitation"),
            ("aortic_stenosis", "aortic stenosis"),
            ("ar", "aortic regurgitation"),
            ("tr", "tricuspid regurgitation"),
        ):
            grade = int(getattr(s, field))
            if grade >= 2 or (field == "aortic_stenosis" and grade == 1):
                lines.append(f"{_cap(GRADES[grade])} {name}.")
        if s.effusion:
            lines.append(f"{_cap(EFFUSION_GRADES[s.effusion])} pericardial effusion.")
        if g["pasp_mmhg"] >= 2:
            lines.append(f"{_cap(_ADJ[g['pasp_mmhg']])} pulmonary hypertension.")
        if len(lines) == 1 and self.chance(0.5):
            lines.append("Otherwise normal echocardiogram.")
        return lines


# --------------------------------------------------------------------------------------------------
# Header, indication, comparison
# --------------------------------------------------------------------------------------------------


def _name(patient: PatientTruth, rng: np.random.Generator) -> str:
    last, _, first = patient.name.partition("^")
    return _pick(rng, (f"{last}, {first}", f"{last.title()}, {first.title()}", f"{first.title()} {last.title()}"))


def _age(birth: dt.date, on: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _header(
    patient: PatientTruth, study: StudyTruth, rng: np.random.Generator, date_style: int
) -> tuple[list[str], bool]:
    """Header lines, and whether they state the heart rate."""
    date = _format_date(study.date, date_style)
    name = _name(patient, rng)
    heart_rate = f"{_half_up(study.heart_rate)} bpm"
    title = _pick(
        rng, ("TRANSTHORACIC ECHOCARDIOGRAM", "Transthoracic Echocardiography Report", "ECHOCARDIOGRAM REPORT", "")
    )
    lines = [title] if title else []
    form = int(rng.integers(3))
    with_rate = _chance(rng, 0.5)
    if form == 0:
        lines.append(f"Patient: {name}  MRN: {patient.patient_id}  Date: {date}")
        if with_rate:
            lines.append(f"HR: {heart_rate}")
    elif form == 1:
        sex = "Male" if patient.sex == "M" else "Female"
        lines += [
            f"Patient Name: {name}",
            f"MRN: {patient.patient_id}",
            f"DOB: {_format_date(patient.birth_date, date_style)}",
            f"Age: {_age(patient.birth_date, study.date)}  Sex: {sex}",
            f"Study Date: {date}",
        ]
        if with_rate:
            lines.append(f"Heart Rate: {heart_rate}")
    else:
        lines.append(f"Name: {name} | Patient ID: {patient.patient_id} | Exam Date: {date}")
        lines.append("Study: Transthoracic echocardiogram, 2D, M-mode and Doppler")
        if with_rate:
            lines.append(f"Rhythm: Sinus rhythm, {heart_rate}")
    if _chance(rng, 0.3):
        lines.append(f"Image quality: {_pick(rng, ('Good', 'Adequate', 'Technically difficult'))}")
    return lines, with_rate


def _indication(patient: PatientTruth, study: StudyTruth, rng: np.random.Generator) -> str:
    follow_up = study.study_index > 0
    course = patient.course
    options: tuple[str, ...]
    if course is Course.CARDIOTOXICITY:
        options = (
            ("Surveillance of LV function during trastuzumab therapy", "Follow-up of chemotherapy cardiotoxicity")
            if follow_up
            else ("Baseline assessment before anthracycline chemotherapy", "Breast cancer, pre-chemotherapy evaluation")
        )
    elif course is Course.EFFUSION:
        options = (
            ("Follow-up of pericardial effusion", "Pericarditis, reassess")
            if follow_up
            else ("Pleuritic chest pain", "Chest pain, rule out pericardial effusion")
        )
    elif course is Course.VALVE_PROGRESSION:
        if study.aortic_stenosis and follow_up:
            options = ("Follow-up of aortic stenosis", "Aortic stenosis surveillance")
        elif study.mr and follow_up:
            options = ("Follow-up of mitral regurgitation",)
        else:
            options = ("Systolic murmur", "Murmur, evaluate valves")
    elif course is Course.DILATED:
        options = (
            ("Heart failure, follow-up", "Cardiomyopathy, reassess LV function")
            if follow_up
            else (
                "Dyspnea and leg edema",
                "Shortness of breath on exertion",
            )
        )
    else:
        options = (
            "Dyspnea on exertion",
            "Hypertension",
            "Palpitations",
            "Preoperative assessment",
            "Chest pain",
            "Syncope",
            "Routine follow-up" if follow_up else "Abnormal ECG",
        )
    return f"{_pick(rng, ('Indication', 'Indication', 'Reason for study', 'Clinical history'))}: {_pick(rng, options)}."


_VALVE_NAMES: Final = {
    "mr": "mitral regurgitation",
    "ar": "aortic regurgitation",
    "tr": "tricuspid regurgitation",
    "aortic_stenosis": "aortic stenosis",
}
_CHAMBER_NAMES: Final = {"rv_dilation": "right ventricle", "la_dilation": "left atrium", "ra_dilation": "right atrium"}


def _chamber_state(grade: int) -> str:
    return "normal in size" if grade == 0 else f"{_ADV[grade]} dilated"


def _change_clause(field: str, before: str, after: str, rng: np.random.Generator) -> str:
    """One clause of the comparison, e.g. ``the LVEF has decreased from 61% to 39%``.

    LVEF numbers are always separated from the label by a verb, so the measurement reader does not
    take the prior value for the current one.
    """
    if field == "lvef":
        if float(after) < float(before):
            return _pick(
                rng,
                (
                    f"the LVEF has decreased from {before}% to {after}%",
                    f"the ejection fraction has fallen from {before}% to {after}%",
                    f"LV systolic function has worsened (ejection fraction down from {before}% to {after}%)",
                ),
            )
        return _pick(
            rng,
            (
                f"the LVEF has improved from {before}% to {after}%",
                f"the ejection fraction has increased from {before}% to {after}%",
                f"LV systolic function has improved (ejection fraction up from {before}% to {after}%)",
            ),
        )
    if field == "lvedd_cm":
        if float(after) > float(before):
            return _pick(rng, ("the left ventricle has dilated further", "the left ventricular cavity is larger"))
        return "the left ventricular cavity is smaller"
    a, b = int(before), int(after)
    if field == "effusion":
        if a == 0:
            return _pick(
                rng,
                (
                    f"a new {EFFUSION_GRADES[b]} pericardial effusion has developed",
                    f"the {EFFUSION_GRADES[b]} pericardial effusion is new",
                ),
            )
        if b == 0:
            return _pick(
                rng,
                (
                    "the pericardial effusion has resolved",
                    "the previously noted pericardial effusion is no longer seen",
                ),
            )
        verb = "increased" if b > a else "decreased"
        return f"the pericardial effusion has {verb} from {EFFUSION_GRADES[a]} to {EFFUSION_GRADES[b]}"
    if field in _VALVE_NAMES:
        name = _VALVE_NAMES[field]
        if a == 0:
            return _pick(rng, (f"{GRADES[b]} {name} is new", f"there is new {GRADES[b]} {name}"))
        if b == 0:
            return f"the previously noted {name} is no longer seen"
        if b > a:
            return _pick(
                rng,
                (
                    f"{name} has progressed from {GRADES[a]} to {GRADES[b]}",
                    f"{name} has worsened from {GRADES[a]} to {GRADES[b]}",
                ),
            )
        return f"{name} has improved from {GRADES[a]} to {GRADES[b]}"
    chamber = _CHAMBER_NAMES[field]
    if a == 0:
        return f"the {chamber} is now {_chamber_state(b)} (previously normal in size)"
    if b == 0:
        return f"the {chamber} is now normal in size (previously {_chamber_state(a)})"
    word = "larger" if b > a else "smaller"
    return f"the {chamber} is {word}, now {_chamber_state(b)} (previously {_chamber_state(a)})"


def _comparison(prior: StudyTruth, study: StudyTruth, rng: np.random.Generator, date_style: int) -> str:
    """A one-line ``Comparison:`` paragraph naming the prior study's date and what changed."""
    date = _format_date(prior.date, date_style)
    diff = changes(prior, study)
    order = ["lvef", "lvedd_cm", *(name for name in diff if name not in ("lvef", "lvedd_cm"))]
    clauses = []
    for name in order:
        if name in diff:
            before, _, after = diff[name].partition(" -> ")
            clauses.append(_change_clause(name, before, after, rng))
    if not clauses:
        text = _pick(
            rng,
            (
                f"Compared with the prior study of {date}, there is no significant change.",
                f"No significant change since the prior study of {date}.",
                f"Prior study dated {date} reviewed. Findings are unchanged.",
            ),
        )
    else:
        body = _join_clauses(clauses)
        text = _pick(
            rng,
            (
                f"Compared with the prior study of {date}, {body}.",
                f"Compared to the previous echocardiogram dated {date}, {body}.",
                f"Prior study dated {date} reviewed. Since then, {body}.",
            ),
        )
        if _chance(rng, 0.4):
            text += " Otherwise no significant change."
    return f"Comparison: {text}"


# --------------------------------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------------------------------

# Heading names per section: spelled out, abbreviated.
_HEADINGS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    LV: (("Left Ventricle", "Left Ventricular Size and Function"), ("LV",)),
    WALL_MOTION: (
        ("Resting Segmental Wall Motion Analysis", "Regional Wall Motion", "Wall Motion"),
        ("LV Wall Motion", "Wall Motion"),
    ),
    RV: (("Right Ventricle", "Right Ventricular Size and Function"), ("RV",)),
    LA: (("Left Atrium",), ("LA",)),
    RA: (("Right Atrium",), ("RA",)),
    ATRIAL_SEPTUM: (("Atrial Septum", "Interatrial Septum"), ("IAS",)),
    MV: (("Mitral Valve",), ("MV",)),
    AV: (("Aortic Valve",), ("AV",)),
    TV: (("Tricuspid Valve",), ("TV",)),
    PV: (("Pulmonic Valve", "Pulmonary Valve"), ("PV",)),
    PERICARDIUM: (("Pericardium",), ("Pericardium",)),
    AORTA: (("Aorta", "Aortic Root", "Aortic Root and Ascending Aorta"), ("Ao", "Aorta")),
    IVC: (("Inferior Vena Cava", "IVC", "Systemic Veins"), ("IVC",)),
    PA: (("Pulmonary Artery", "Pulmonary Artery Pressure", "Pulmonary Pressures"), ("PA", "PASP")),
    PULMONARY_VEINS: (("Pulmonary Veins",), ("Pulmonary Veins",)),
}
# Headings that read as a finding when written alone on a line in mixed case; they get a colon there.
_FINDING_LIKE: Final = frozenset({"Wall Motion", "Regional Wall Motion", "Pulmonary Artery Pressure"})


def _headed(sections: dict[str, list[str]], style: str, rng: np.random.Generator) -> list[str]:
    naming = _pick(rng, ("full", "full", "short", "mixed"))
    case = _pick(rng, ("title", "upper", "title_colon"))
    blank = style != "colon" or _chance(rng, 0.5)
    one_line = _chance(rng, 0.6)
    lines: list[str] = []
    for section in ECHO_SECTIONS:
        sentences = sections.get(section)
        if not sentences:
            continue
        full, short = _HEADINGS[section]
        use_short = naming == "short" or (naming == "mixed" and _chance(rng, 0.5))
        heading = _pick(rng, short if use_short else full)
        body = " ".join(sentences)
        if style == "colon":
            lines.append(f"{heading.upper() if case == 'upper' else heading}: {body}")
        elif style == "dash":
            lines.append(f"{heading.upper() if case == 'upper' else heading} - {body}")
        else:
            if style == "markdown":
                lines.append(f"{'#' * int(rng.integers(2, 4))} {heading}")
            elif case == "upper":
                lines.append(heading.upper())
            elif case == "title_colon" or heading in _FINDING_LIKE:
                lines.append(f"{heading}:")
            else:
                lines.append(heading)
            lines += [body] if one_line else sentences
        if blank:
            lines.append("")
    return lines


def _prose(sections: dict[str, list[str]], rng: np.random.Generator) -> list[str]:
    lines = ["Findings:"] if _chance(rng, 0.6) else []
    paragraph: list[str] = []
    for section in ECHO_SECTIONS:
        paragraph += sections.get(section, [])
        if paragraph and _chance(rng, 0.35):
            lines += [" ".join(paragraph), ""]
            paragraph = []
    if paragraph:
        lines += [" ".join(paragraph), ""]
    return lines


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def write_report(
    patient: PatientTruth, study: StudyTruth, prior: StudyTruth | None, rng: np.random.Generator
) -> SimReport:
    """Write the report of ``study`` (one of ``patient``'s), comparing it with ``prior`` when given.

    Deterministic for the generator's state; the generator is advanced.

    Raises:
        ValueError: ``prior`` is not dated before ``study``, or the patient's sex is not "M" or "F".
    """
    if prior is not None and prior.date >= study.date:
        raise ValueError(
            f"prior study of {prior.date.isoformat()} is not before the current study of "
            f"{study.date.isoformat()}; pass an earlier study of the patient as prior, or None"
        )
    composer = _Composer(patient, study, rng)
    style = _pick(rng, ("colon", "colon", "block", "markdown", "dash", "prose"))
    date_style = int(rng.integers(_DATE_STYLES))
    header, with_rate = _header(patient, study, rng, date_style)
    indication = _indication(patient, study, rng)
    composer.findings()
    comparison = ""
    if prior is not None:
        comparison = _comparison(prior, study, rng, date_style)
    elif _chance(rng, 0.3):
        comparison = _pick(rng, ("Comparison: None.", "Comparison: No prior study available."))
    comparison_first = _chance(rng, 0.75)

    lines = [*header, indication]
    if comparison and comparison_first:
        lines.append(comparison)
    lines.append("")
    if style == "prose":
        lines += _prose(composer.sections, rng)
    else:
        lines += _headed(composer.sections, style, rng)
        if _chance(rng, 0.55):
            heading = _pick(rng, ("Conclusion:", "Conclusions:", "Impression:", "Summary:", "IMPRESSION"))
            conclusion = composer.conclusion()
            numbered = _chance(rng, 0.6)
            lines.append(heading)
            lines += [f"{i}. {line}" for i, line in enumerate(conclusion, 1)] if numbered else [" ".join(conclusion)]
            lines.append("")
    if comparison and not comparison_first:
        lines += [comparison, ""]
    text = "\n".join(lines).strip() + "\n"
    mentioned = set(composer.mentioned)
    if with_rate:
        mentioned.add("heart_rate")
    sections = {name: " ".join(composer.sections[name]) for name in ECHO_SECTIONS if name in composer.sections}
    return SimReport(text=text, mentioned=frozenset(mentioned), sections=MappingProxyType(sections), style=style)


def write_patient_reports(patient: PatientTruth, rng: np.random.Generator) -> tuple[SimReport, ...]:
    """One report per study of ``patient``, each compared with the study before it."""
    reports = []
    prior: StudyTruth | None = None
    for study in patient.studies:
        reports.append(write_report(patient, study, prior, rng))
        prior = study
    return tuple(reports)
