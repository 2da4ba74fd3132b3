"""The sections of echo and chest X-ray reports.

Echo reports use EchoPrime's 15 anatomical sections (in this order) plus ``Free Text``; chest X-ray
reports COMPARISON / INDICATION / FINDINGS / IMPRESSION plus ``Free Text``.
"""

from __future__ import annotations

__all__ = [
    "AORTA",
    "ATRIAL_SEPTUM",
    "AV",
    "CXR_SECTIONS",
    "ECHO_SECTIONS",
    "FREE_TEXT",
    "IVC",
    "LA",
    "LV",
    "MV",
    "PA",
    "PERICARDIUM",
    "PULMONARY_VEINS",
    "PV",
    "RA",
    "RV",
    "TV",
    "WALL_MOTION",
]

ECHO_SECTIONS: tuple[str, ...] = (
    "Left Ventricle",
    "Resting Segmental Wall Motion Analysis",
    "Right Ventricle",
    "Left Atrium",
    "Right Atrium",
    "Atrial Septum",
    "Mitral Valve",
    "Aortic Valve",
    "Tricuspid Valve",
    "Pulmonic Valve",
    "Pericardium",
    "Aorta",
    "IVC",
    "Pulmonary Artery",
    "Pulmonary Veins",
)
FREE_TEXT = "Free Text"
CXR_SECTIONS: tuple[str, ...] = ("COMPARISON", "INDICATION", "FINDINGS", "IMPRESSION")

# Section names as constants (the order of ECHO_SECTIONS).
(
    LV,
    WALL_MOTION,
    RV,
    LA,
    RA,
    ATRIAL_SEPTUM,
    MV,
    AV,
    TV,
    PV,
    PERICARDIUM,
    AORTA,
    IVC,
    PA,
    PULMONARY_VEINS,
) = ECHO_SECTIONS
