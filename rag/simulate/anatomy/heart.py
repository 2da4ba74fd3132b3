"""Anatomy shared by the view models: regional wall motion, an LV cavity whose area follows the LVEF
over the cycle, the LV in long-axis section, pericardial effusion depth and between-patient size
variation."""

from __future__ import annotations

import math
import re

import numpy as np

from rag.simulate.anatomy.geometry import FloatArray, outward_normals, polygon_area, smooth_open
from rag.simulate.truth import StudyTruth

EFFUSION_CM = (0.0, 0.3, 0.7, 1.2)  # echo-free pericardial space by EFFUSION_GRADES
PERICARDIUM_CM = 0.22

# Aortic valve disease drawn as the ASE grades it. Stenosis: the systolic opening as a fraction of a
# normal valve's (valve area > 1.5, 1.0-1.5, < 1.0 cm2 against 3-4 cm2 normal), cusps thickening by
# grade, and an aliasing (mosaic) jet beyond the valve in systole. Regurgitation: the diastolic jet's
# width as a fraction of the LVOT (< 25 %, 25-64 %, >= 65 %) and how deep it reaches into the LV.
AS_OPENING = (1.0, 0.6, 0.4, 0.22)
AS_JET = ((0.0, 0.0), (2.4, 0.45), (3.4, 0.65), (4.4, 0.85))  # systolic mosaic: (cm, fraction of the root)
AR_JET_WIDTH = (0.0, 0.18, 0.45, 0.78)  # fraction of the LVOT diameter
AR_JET_CM = (0.0, 1.8, 3.2, 4.6)  # depth into the LV outflow


def aortic_cusps(truth: StudyTruth, aortic_open: float) -> tuple[float, float]:
    """(opening fraction, stroke width in cm) of the aortic cusps at this instant."""
    opening = aortic_open * AS_OPENING[min(max(truth.aortic_stenosis, 0), 3)]
    width = 0.14 + (0.1 if truth.av_thickened else 0.0) + 0.08 * truth.aortic_stenosis
    return opening, width


_SEVERITY: dict[str, float] = {
    "hypokinesis": 0.35,
    "hypokinetic": 0.35,
    "akinesis": 0.03,
    "akinetic": 0.03,
    "dyskinesis": -0.2,
    "dyskinetic": -0.2,
}


def wall_motion_weight(wall_motion: str, names: tuple[str, ...]) -> float:
    """Relative motion (1 normal) of a wall segment called ``names`` given a wall-motion finding such as
    ``"inferior hypokinesis"``; global findings act through the LVEF alone."""
    tokens = set(re.findall(r"[a-z]+", wall_motion.lower()))
    if "global" in tokens or not tokens & set(names):
        return 1.0
    for word, value in _SEVERITY.items():
        if word in tokens:
            return value
    return 0.5


class Ventricle:
    """An LV cavity outline whose area follows the LVEF exactly over the cycle.

    The end-diastolic outline ``ed`` moves by ``k * motion`` (per-point displacements already weighted by
    regional wall motion); polygon area is quadratic in ``k``, so each frame solves for the ``k`` that gives
    the area ratio ``1 - contraction * (1 - ESA/EDA)`` with ESA/EDA = (1 - LVEF)^(2/3).
    """

    def __init__(self, ed: FloatArray, motion: FloatArray, weights: FloatArray, lvef: float, wall: FloatArray) -> None:
        self.ed, self.motion, self.weights, self.wall = ed, motion, weights, wall
        self.ratio_es = (1.0 - lvef / 100.0) ** (2.0 / 3.0)
        x0, y0 = ed[:, 0], ed[:, 1]
        dx, dy = motion[:, 0], motion[:, 1]
        a0 = polygon_area(ed)
        a1 = 0.5 * float(
            np.dot(x0, np.roll(dy, -1))
            - np.dot(np.roll(x0, -1), dy)
            + np.dot(dx, np.roll(y0, -1))
            - np.dot(np.roll(dx, -1), y0)
        )
        a2 = polygon_area(motion)
        sign = 1.0 if a0 >= 0 else -1.0
        self._a = (sign * a0, sign * a1, sign * a2)

    def k_for(self, contraction: float) -> float:
        a0, a1, a2 = self._a
        target = a0 * (1.0 - contraction * (1.0 - self.ratio_es))
        c = a0 - target
        if abs(a2) < 1e-12:
            return c / -a1 if a1 else 0.0
        disc = max(a1 * a1 - 4 * a2 * c, 0.0)
        roots = [(-a1 - math.sqrt(disc)) / (2 * a2), (-a1 + math.sqrt(disc)) / (2 * a2)]
        positive = [r for r in roots if r >= -1e-9]
        return max(min(positive), 0.0) if positive else 0.0

    def endo(self, contraction: float) -> tuple[FloatArray, float]:
        k = self.k_for(contraction)
        return self.ed + k * self.motion, k

    def epi(self, endo: FloatArray, k: float, *, closed: bool) -> FloatArray:
        """Epicardial points facing ``endo`` (walls thicken where they move)."""
        centre = endo.mean(axis=0)
        thick = self.wall * (1.0 + 1.05 * k * self.weights)
        return endo + outward_normals(endo, centre, closed=closed) * thick[:, None]


def _lv_profile(z: FloatArray, annulus_ratio: float) -> FloatArray:
    """Half-width of a long-axis LV section (fraction of the widest) at ``z`` = 0 base .. 1 apex."""
    rise = np.sin(0.5 * math.pi * np.minimum(z / 0.3, 1.0))
    f = (
        np.power(np.clip(1.0 - z**2.0, 0.0, 1.0), 0.5)
        * (1.0 - 0.15 * z)
        * (annulus_ratio + (1.0 - annulus_ratio) * rise)
    )
    result: FloatArray = f / f.max()
    return result


def long_axis_lv(
    length: float,
    width: float,
    annulus: float,
    truth: StudyTruth,
    names: tuple[tuple[str, ...], tuple[str, ...]],
    n: int = 30,
) -> tuple[Ventricle, FloatArray]:
    """An LV in long-axis section with its apex at the origin and base centre at (0, length); side -1 (the
    first half of the outline, base to apex) at x < 0. Returns the ventricle and z (0 base .. 1 apex)
    per outline point."""
    s = np.linspace(0.0, 1.0, n)
    z_side = 0.5 * (1.0 - np.cos(math.pi * s))
    h = 0.5 * width * _lv_profile(z_side, annulus / width)
    z = np.concatenate([z_side, z_side[-2::-1]])
    side = np.concatenate([-np.ones(n), np.ones(n - 1)])
    half = np.concatenate([h, h[-2::-1]])
    a = z * length
    ed = np.stack([side * half, length - a], axis=1)
    # base rises towards the apex (long-axis shortening), walls move towards the axis
    motion = np.stack([-1.0 * side * half, -0.33 * (length - a)], axis=1)
    w_side = np.where(
        side < 0, wall_motion_weight(truth.wall_motion, names[0]), wall_motion_weight(truth.wall_motion, names[1])
    )
    apical = wall_motion_weight(truth.wall_motion, ("apical", "apex"))
    weights = np.where(z > 0.68, np.minimum(w_side, apical) if apical < 1 else w_side, w_side)
    weights = smooth_open(weights, 6)
    motion *= weights[:, None]
    wall = truth.wall_cm * (1.0 - 0.3 * np.clip((z - 0.75) / 0.25, 0.0, 1.0))
    return Ventricle(ed, motion, weights, truth.lvef, wall), z


def jitter(rng: np.random.Generator, spread: float) -> float:
    """A factor near 1 for anatomical variation between patients and clips."""
    return float(rng.normal(1.0, spread))


def grade_scale(grade: int, step: float = 0.16) -> float:
    return 1.0 + step * max(grade, 0)
