"""Severity grades of measurements: the ASE cut-offs (0 normal, 1 mild, 2 moderate, 3 severe).

Sex-specific for LV diameter, wall thickness, LA diameter and LVEF. Values are rounded as a report
writes them (0.1 cm, whole % and mmHg) before they are graded.
"""

from __future__ import annotations

import math
from typing import Final

__all__ = [
    "LA_FLOOR",
    "LA_LIMITS",
    "check_sex",
    "half_up",
    "la_diameter_grade",
    "lv_size_grade",
    "lvef_grade",
    "lvef_grades",
    "pasp_grade",
    "tenths",
    "wall_thickness_grade",
]

# Upper limits (in tenths of a cm) of normal, mild and moderate; above the last is severe.
# ASE chamber quantification: LV end-diastolic diameter, septal/posterior wall thickness, LA diameter.
_LV_DIAMETER_LIMITS: Final = {"M": (58, 63, 68), "F": (52, 56, 61)}
_WALL_LIMITS: Final = {"M": (10, 13, 16), "F": (9, 12, 15)}
LA_LIMITS: Final = {"M": (40, 46, 51), "F": (38, 42, 46)}
LA_FLOOR: Final = {"M": 30, "F": 27}
_LVEF_NORMAL: Final = {"M": 52, "F": 54}


def half_up(value: float) -> int:
    """``value`` rounded to the nearest integer, halves up (as reports round)."""
    return math.floor(value + 0.5)


def tenths(value_cm: float) -> int:
    """A length in cm as whole tenths of a cm, rounded as :func:`half_up`."""
    return half_up(value_cm * 10.0)


def _graded(tenths: int, limits: tuple[int, int, int]) -> int:
    return sum(tenths > limit for limit in limits)


def check_sex(sex: str) -> str:
    """``sex`` itself when it is "M" or "F".

    Raises:
        ValueError: any other value.
    """
    if sex not in ("M", "F"):
        raise ValueError(f"sex must be 'M' or 'F', got {sex!r}")
    return sex


def lv_size_grade(lvedd_cm: float, sex: str) -> int:
    """LV dilation 0-3 from the end-diastolic diameter as written (rounded to 0.1 cm), ASE sex-specific."""
    return _graded(tenths(lvedd_cm), _LV_DIAMETER_LIMITS[check_sex(sex)])


def wall_thickness_grade(wall_cm: float, sex: str) -> int:
    """LV hypertrophy 0-3 from septal/posterior wall thickness (rounded to 0.1 cm), ASE sex-specific."""
    return _graded(tenths(wall_cm), _WALL_LIMITS[check_sex(sex)])


def la_diameter_grade(la_cm: float, sex: str) -> int:
    """LA enlargement 0-3 from the antero-posterior LA diameter (rounded to 0.1 cm), ASE sex-specific."""
    return _graded(tenths(la_cm), LA_LIMITS[check_sex(sex)])


def lvef_grade(lvef: float, sex: str) -> int:
    """LV systolic dysfunction 0-3 from the LVEF in % (rounded to an integer).

    ASE: normal from 52 % (men) or 54 % (women); mildly reduced down to 41 %, moderately 30-40 %,
    severely below 30 %.
    """
    value = half_up(lvef)
    if value >= _LVEF_NORMAL[check_sex(sex)]:
        return 0
    if value >= 41:
        return 1
    return 2 if value >= 30 else 3


def lvef_grades(lvef: float) -> tuple[int, ...]:
    """The LV systolic dysfunction grades an LVEF allows when the patient's sex is not known: one,
    except between the men's and women's lower limits of normal (52-53 %: normal or mildly reduced)."""
    return tuple(sorted({lvef_grade(lvef, sex) for sex in _LVEF_NORMAL}))


def pasp_grade(pasp_mmhg: float) -> int:
    """Pulmonary hypertension 0-3 from the PASP in mmHg (rounded): up to 35 normal, 36-49 mild,
    50-59 moderate, 60 and above severe."""
    value = half_up(pasp_mmhg)
    return sum(value > limit for limit in (35, 49, 59))
