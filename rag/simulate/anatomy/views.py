"""Which model draws each standard view (:func:`build_view`) and which views are colour-Doppler cines."""

from __future__ import annotations

import numpy as np

from rag.simulate.anatomy.four_chamber import FourChamber
from rag.simulate.anatomy.long_axis import LongAxis
from rag.simulate.anatomy.scene import Placement, ViewModel
from rag.simulate.anatomy.short_axis import ShortAxisBase, ShortAxisMid
from rag.simulate.anatomy.suprasternal import Suprasternal
from rag.simulate.truth import StudyTruth

DOPPLER_VIEWS: frozenset[str] = frozenset({"Apical_Doppler", "Doppler_Parasternal_Long", "Doppler_Parasternal_Short"})


def build_view(view: str, truth: StudyTruth, rng: np.random.Generator) -> ViewModel:
    """The anatomy of one clip of ``view`` (one of ``COARSE_VIEWS``), with this clip's anatomical and
    probe-position variation drawn from ``rng``."""
    tilt = float(rng.normal(0.0, 2.0))
    if view in ("A4C", "Apical_Doppler"):
        angle = -8.0 + tilt
        return FourChamber(
            truth,
            rng,
            placement=Placement(angle, float(rng.normal(0.45, 0.2)), float(rng.normal(2.7, 0.15))),
            doppler=view == "Apical_Doppler",
        )
    if view == "A5C":
        return FourChamber(
            truth,
            rng,
            placement=Placement(-5.0 + tilt, float(rng.normal(0.35, 0.2)), float(rng.normal(2.7, 0.15))),
            lvot=True,
        )
    if view == "A2C":
        return FourChamber(
            truth,
            rng,
            placement=Placement(-3.0 + tilt, float(rng.normal(0.1, 0.2)), float(rng.normal(2.7, 0.15))),
            right_heart=False,
            wall_names=(("inferior",), ("anterior",)),
        )
    if view == "Subcostal":
        return FourChamber(truth, rng, placement=Placement(62.0 + 3 * tilt, 0.0, 0.0), subcostal=True)
    if view in ("Parasternal_Long", "Doppler_Parasternal_Long"):
        return LongAxis(truth, rng, doppler=view == "Doppler_Parasternal_Long")
    if view == "A3C":
        return LongAxis(truth, rng, apical=True)
    if view == "Parasternal_Short":
        return ShortAxisMid(truth, rng)
    if view == "Doppler_Parasternal_Short":
        return ShortAxisBase(truth, rng, doppler=True)
    if view == "SSN":
        return Suprasternal(truth, rng)
    raise ValueError(f"unknown view {view!r}")
