"""The phenotypes of a simulated study read from its ground truth: each finding's grade 0-3 and each
measurement, by the same ASE cut-offs the reports are written with."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from rag.vocab.cutoffs import lv_size_grade, lvef_grade, pasp_grade, wall_thickness_grade

__all__ = ["TRUTH_GRADES", "TRUTH_VALUES", "Row"]


Row = Mapping[str, str]


def _flag(value: str) -> int:
    return int(value.strip().lower() in ("true", "1", "yes"))


TRUTH_GRADES: Mapping[str, Callable[[Row], int]] = {
    "lv_dilation": lambda r: lv_size_grade(float(r["lvedd_cm"]), r["sex"]),
    "lv_hypertrophy": lambda r: wall_thickness_grade(float(r["wall_cm"]), r["sex"]),
    "lv_systolic_dysfunction": lambda r: lvef_grade(float(r["lvef"]), r["sex"]),
    "wall_motion_abnormality": lambda r: int(r["wall_motion"].strip() != "normal"),
    "rv_dilation": lambda r: int(r["rv_dilation"]),
    "rv_systolic_dysfunction": lambda r: _flag(r["rv_dysfunction"]),
    "la_dilation": lambda r: int(r["la_dilation"]),
    "ra_dilation": lambda r: int(r["ra_dilation"]),
    "mitral_regurgitation": lambda r: int(r["mr"]),
    "aortic_stenosis": lambda r: int(r["aortic_stenosis"]),
    "aortic_regurgitation": lambda r: int(r["ar"]),
    "tricuspid_regurgitation": lambda r: int(r["tr"]),
    "pericardial_effusion": lambda r: int(r["effusion"]),
    "dilated_ivc": lambda r: _flag(r["ivc_dilated"]),
    "pulmonary_hypertension": lambda r: pasp_grade(float(r["pasp_mmhg"])),
}
"""Phenotype -> its grade 0-3 in a row of the simulated archive's ``truth/studies.csv``."""

TRUTH_VALUES: Mapping[str, Callable[[Row], float]] = {
    "lvef": lambda r: float(r["lvef"]),
    "lvedd": lambda r: float(r["lvedd_cm"]),
    "lvesd": lambda r: float(r["lvesd_cm"]),
    "pasp": lambda r: float(r["pasp_mmhg"]),
}
"""Continuous phenotype -> its true value in a row of ``truth/studies.csv``."""
