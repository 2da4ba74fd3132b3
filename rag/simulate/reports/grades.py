"""The answer key of report findings: which section states each truth field, and each finding's
severity grade (0 normal, 1 mild, 2 moderate, 3 severe) by the ASE cut-offs."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from rag.simulate.truth import PatientTruth, StudyTruth
from rag.vocab.cutoffs import lv_size_grade, lvef_grade, pasp_grade, wall_thickness_grade
from rag.vocab.sections import AV, FREE_TEXT, IVC, LA, LV, MV, PA, PERICARDIUM, RA, RV, TV, WALL_MOTION

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
