"""Per-view heart geometry of the simulated archive: which structures each standard echo view shows,
where they lie, and how they move over the cardiac and respiratory cycles.

Coordinates are centimetres in the imaging plane: ``x`` to the right of the screen, ``y`` the depth below
the transducer (the apex of the imaging sector is the origin). Screen orientation follows the ASE
convention (apical views: LV on the right, atria at the bottom; PLAX: apex on the left, aorta on the
right; PSAX: anterior at the top, patient's left on the screen's right).

A view model is built once per clip (:func:`build_view`, which draws the anatomical variation of the
clip from ``rng``) and asked for a :class:`Scene` at every frame. A scene is a painter's list of filled
polygons and strokes with their echogenicity (dB below the brightest reflector), the LV cavity outline
and, for colour-Doppler views, the blood flows to colour. All truth that reaches the pixels (LVEF, LV
size, wall thickness, chamber dilation, effusion, valve disease, regurgitant jets, IVC size and
collapse, regional wall motion) enters here.

Modules: :mod:`~rag.simulate.anatomy.timing` (cardiac cycle, ECG), :mod:`~rag.simulate.anatomy.scene`
(scenes, placements, echogenicity levels), :mod:`~rag.simulate.anatomy.geometry` (curves and outlines),
:mod:`~rag.simulate.anatomy.heart` (LV motion, wall motion, shared dimensions), one module per view
family (:mod:`~rag.simulate.anatomy.four_chamber`, :mod:`~rag.simulate.anatomy.long_axis`,
:mod:`~rag.simulate.anatomy.short_axis`, :mod:`~rag.simulate.anatomy.suprasternal`) and
:mod:`~rag.simulate.anatomy.views` (view name -> model).
"""

from rag.simulate.anatomy.four_chamber import FourChamber
from rag.simulate.anatomy.geometry import FloatArray, ellipse, oval, plume, spline
from rag.simulate.anatomy.heart import wall_motion_weight
from rag.simulate.anatomy.long_axis import LongAxis
from rag.simulate.anatomy.scene import (
    ATRIAL_WALL,
    BLOOD,
    DIAPHRAGM,
    FAT,
    FLUID,
    LIVER,
    MYOCARDIUM,
    PERICARDIUM,
    THICK_VALVE,
    TISSUE,
    VALVE,
    VESSEL_WALL,
    Flow,
    Placement,
    Scene,
    Shape,
    ViewModel,
)
from rag.simulate.anatomy.short_axis import ShortAxisBase, ShortAxisMid
from rag.simulate.anatomy.suprasternal import Suprasternal
from rag.simulate.anatomy.timing import CardiacState, cardiac_state, ecg_mv, systole_seconds
from rag.simulate.anatomy.views import DOPPLER_VIEWS, build_view

__all__ = [
    "ATRIAL_WALL",
    "BLOOD",
    "DIAPHRAGM",
    "DOPPLER_VIEWS",
    "FAT",
    "FLUID",
    "LIVER",
    "MYOCARDIUM",
    "PERICARDIUM",
    "THICK_VALVE",
    "TISSUE",
    "VALVE",
    "VESSEL_WALL",
    "CardiacState",
    "FloatArray",
    "Flow",
    "FourChamber",
    "LongAxis",
    "Placement",
    "Scene",
    "Shape",
    "ShortAxisBase",
    "ShortAxisMid",
    "Suprasternal",
    "ViewModel",
    "build_view",
    "cardiac_state",
    "ecg_mv",
    "ellipse",
    "oval",
    "plume",
    "spline",
    "systole_seconds",
    "wall_motion_weight",
]
