"""The suprasternal-notch view (SSN) of the aortic arch and its branches."""

from __future__ import annotations

import numpy as np

from rag.simulate.anatomy.geometry import FloatArray, ellipse, outward_normals, points, spline, unit
from rag.simulate.anatomy.scene import BLOOD, VESSEL_WALL, Placement, Scene, Shape
from rag.simulate.anatomy.timing import CardiacState
from rag.simulate.truth import StudyTruth


class Suprasternal:
    """SSN long axis of the aortic arch: distal ascending aorta (left), arch with the brachiocephalic, left
    carotid and left subclavian arteries rising towards the probe, descending aorta (right), right pulmonary
    artery in cross-section under the arch, left brachiocephalic vein crossing above it."""

    def __init__(self, truth: StudyTruth, rng: np.random.Generator) -> None:
        self.truth = truth
        top = float(rng.normal(4.6, 0.3))
        sx, sy = float(rng.normal(0.85, 0.05)), float(rng.normal(0.95, 0.05))
        ctrl = points(
            (-4.6, 6.0),
            (-3.6, 3.6),
            (-2.0, 2.1),
            (0.2, 1.6),
            (2.2, 2.2),
            (3.5, 3.9),
            (4.1, 6.6),
            (4.3, 9.6),
            (4.4, 13.0),
        )
        ctrl[:, 0] *= sx
        ctrl[:, 1] = top + (ctrl[:, 1] - 1.6) * sy
        self.centre = spline(ctrl, 4)
        self.r = 0.5 * float(rng.normal(2.5, 0.15))
        self.place = Placement(float(rng.normal(0.0, 4.0)), float(rng.normal(0.0, 0.3)), 0.0)
        self.depth_cm = float(np.clip(rng.normal(14.5, 0.8), 13.0, 17.0))
        self.doppler_roi: FloatArray | None = None
        self.background: list[Shape] = []

    def scene(self, state: CardiacState) -> Scene:
        sc = Scene()
        centre = self.centre
        s = np.linspace(0.0, 1.0, len(centre))
        radius = self.r * (1.0 - 0.25 * s) * (1.0 + 0.05 * state.ejection)
        mid = centre[len(centre) // 3] + np.array([0.0, 3.0])
        nrm = outward_normals(centre, mid, closed=False)
        tube = np.vstack([centre + nrm * radius[:, None], (centre - nrm * radius[:, None])[::-1]])
        top_y = float(centre[:, 1].min())
        # left brachiocephalic vein crossing above the arch, right pulmonary artery and LA below it
        vein = np.stack([np.linspace(-6.5, 4.5, 8), top_y - 1.35 + 0.12 * np.sin(np.linspace(0, 3, 8))], axis=1)
        sc.stroke(vein, 1.05, VESSEL_WALL)
        sc.stroke(vein, 0.75, BLOOD)
        apex = centre[int(np.argmin(centre[:, 1]))]
        rpa = ellipse(float(apex[0]) - 0.3, top_y + 2.0 * self.r + 1.4, 0.9, 0.75, 0.0, 28)
        la = ellipse(float(apex[0]) - 0.6, top_y + 2.0 * self.r + 5.6, 2.3, 1.4, 0.0, 32)
        for outline in (rpa, la):
            sc.stroke(outline, 0.55, VESSEL_WALL, closed=True)
        # branches from the top of the arch
        tops = np.argsort(centre[:, 1])
        order = sorted(int(i) for i in tops[:9])
        for j, (rad, lean) in zip(
            (order[1], order[4], order[7]), ((0.5, -0.5), (0.36, -0.1), (0.4, 0.35)), strict=True
        ):
            base = centre[j]
            tip = base + np.array([lean - 0.4, -(base[1] - 0.6)])
            axis = unit(tip - base)
            perp = np.array([-axis[1], axis[0]])
            branch = np.vstack([base - perp * rad, tip - perp * rad * 0.9, tip + perp * rad * 0.9, base + perp * rad])
            sc.stroke(branch, 0.35, VESSEL_WALL, closed=True)
            sc.fill(branch, BLOOD)
        sc.stroke(tube, 0.55, VESSEL_WALL, closed=True)
        sc.fill(tube, BLOOD)
        sc.fill(rpa, BLOOD)
        sc.fill(la, BLOOD)
        return sc.placed(self.place)
