"""Which anatomical report sections each echo view informs (the default section x view weights).

A clip of a view is evidence for the report sections whose structures that view shows well. The
weights here are the starting table: contrastive training pairs clips with the sections their view
informs, and view-informed retrieval weights clip embeddings per section. Rows are sections (the 15
of ``rag.ingest.sections.ECHO_SECTIONS``), columns the 11 coarse views; 1.0 = the view shows the
section's structures well, 0.5 = partially, 0 = not at all.
"""

from __future__ import annotations

from rag.vocab.sections import ECHO_SECTIONS
from rag.vocab.views import COARSE_VIEWS

_W: dict[str, dict[str, float]] = {
    "Left Ventricle": {"A4C": 1, "A2C": 1, "A3C": 1, "A5C": 0.5, "Parasternal_Long": 1, "Parasternal_Short": 1,
                       "Subcostal": 0.5, "Apical_Doppler": 0.5},
    "Resting Segmental Wall Motion Analysis": {"A4C": 1, "A2C": 1, "A3C": 1, "Parasternal_Short": 1,
                                               "Parasternal_Long": 0.5},
    "Right Ventricle": {"A4C": 1, "Parasternal_Short": 0.5, "Parasternal_Long": 0.5, "Subcostal": 1,
                        "Apical_Doppler": 0.5},
    "Left Atrium": {"A4C": 1, "A2C": 1, "Parasternal_Long": 1, "A3C": 0.5},
    "Right Atrium": {"A4C": 1, "Subcostal": 1, "Apical_Doppler": 0.5},
    "Atrial Septum": {"Subcostal": 1, "A4C": 0.5},
    "Mitral Valve": {"A4C": 0.5, "A2C": 0.5, "A3C": 0.5, "Parasternal_Long": 0.5, "Apical_Doppler": 1,
                     "Doppler_Parasternal_Long": 1},
    "Aortic Valve": {"A5C": 1, "A3C": 0.5, "Parasternal_Long": 0.5, "Doppler_Parasternal_Long": 1,
                     "Doppler_Parasternal_Short": 1},
    "Tricuspid Valve": {"A4C": 0.5, "Apical_Doppler": 1, "Doppler_Parasternal_Short": 0.5},
    "Pulmonic Valve": {"Doppler_Parasternal_Short": 1, "Parasternal_Short": 0.5},
    "Pericardium": {"Parasternal_Long": 1, "Subcostal": 1, "A4C": 0.5, "Parasternal_Short": 0.5},
    "Aorta": {"Parasternal_Long": 1, "SSN": 1, "A5C": 0.5},
    "IVC": {"Subcostal": 1},
    "Pulmonary Artery": {"Doppler_Parasternal_Short": 1, "Apical_Doppler": 0.5},
    "Pulmonary Veins": {"A4C": 0.5, "Apical_Doppler": 1},
}  # fmt: skip


def default_weights() -> dict[str, dict[str, float]]:
    """The section x view table as nested dicts (every section and view present, missing = 0.0)."""
    return {s: {v: float(_W.get(s, {}).get(v, 0.0)) for v in COARSE_VIEWS} for s in ECHO_SECTIONS}


def informed_sections(view: str, *, threshold: float = 1.0) -> tuple[str, ...]:
    """The sections a view informs with at least ``threshold`` weight, in report order."""
    return tuple(s for s in ECHO_SECTIONS if _W.get(s, {}).get(view, 0.0) >= threshold)
