"""The parasternal short-axis views: mid-ventricular (papillary-muscle level, regional wall motion by
segment) and, for the colour-Doppler cine, the aortic-valve level with pulmonary outflow, tricuspid
inflow and the tricuspid and aortic regurgitant jets."""

from __future__ import annotations

import math

import numpy as np

from rag.simulate.anatomy.geometry import FloatArray, ellipse, leaflet, oval, plume, points, smooth_closed, spline, unit
from rag.simulate.anatomy.heart import (
    AR_JET_WIDTH,
    AS_OPENING,
    EFFUSION_CM,
    PERICARDIUM_CM,
    Ventricle,
    aortic_cusps,
    jitter,
    wall_motion_weight,
)
from rag.simulate.anatomy.scene import (
    ATRIAL_WALL,
    BLOOD,
    FLUID,
    MYOCARDIUM,
    PERICARDIUM,
    THICK_VALVE,
    VALVE,
    VESSEL_WALL,
    Flow,
    Placement,
    Scene,
    Shape,
)
from rag.simulate.anatomy.timing import CardiacState
from rag.simulate.truth import StudyTruth


class ShortAxisMid:
    """PSAX at the papillary-muscle level: round LV ring with two papillary muscles, RV crescent at the
    upper left. Model frame: LV centre at the origin."""

    _SEGMENTS: tuple[tuple[float, tuple[str, ...]], ...] = (
        (-90.0, ("anterior",)),
        (-145.0, ("anteroseptal", "septal", "septum")),
        (150.0, ("inferoseptal", "septal", "septum")),
        (90.0, ("inferior",)),
        (35.0, ("inferolateral", "posterior", "lateral")),
        (-30.0, ("anterolateral", "lateral")),
    )

    def __init__(self, truth: StudyTruth, rng: np.random.Generator) -> None:
        self.truth = truth
        r = 0.5 * truth.lvedd_cm * jitter(rng, 0.03)
        n = 72
        theta = np.linspace(-math.pi, math.pi, n, endpoint=False)
        ell = 1.0 + 0.04 * np.cos(2 * (theta - 0.3))
        ed = np.stack([r * ell * np.cos(theta), r * ell * np.sin(theta)], axis=1)
        weights = np.ones(n)
        for centre, names in self._SEGMENTS:
            wgt = wall_motion_weight(truth.wall_motion, names)
            if wgt != 1.0:
                dist = np.abs((np.degrees(theta) - centre + 180.0) % 360.0 - 180.0)
                weights = np.minimum(weights, np.where(dist < 35.0, wgt, 1.0))
        weights = smooth_closed(weights, 8)
        motion = -ed * weights[:, None]
        self.lv = Ventricle(ed, motion, weights, truth.lvef, np.full(n, truth.wall_cm))
        self.theta = theta
        self.r = r
        self.effusion = EFFUSION_CM[min(max(truth.effusion, 0), 3)]
        self.rv_d = (1.5 + 0.55 * truth.rv_dilation) * jitter(rng, 0.07)
        self.rv_wall = 0.42
        self.pm_r = (0.5 + 0.1 * max(truth.wall_cm - 1.0, 0.0)) * jitter(rng, 0.05)
        cy = 1.55 + 0.45 + 0.45 * self.rv_d + truth.wall_cm + r
        self.place = Placement(float(rng.normal(0.0, 6.0)), float(rng.normal(0.4, 0.3)), cy + float(rng.normal(0, 0.2)))
        self.depth_cm = float(np.clip(cy + r + truth.wall_cm + 4.0 + rng.normal(0.5, 0.5), 12.0, 18.0))
        self.doppler_roi: FloatArray | None = None
        self.background: list[Shape] = []

    def scene(self, state: CardiacState) -> Scene:
        sc = Scene()
        endo, k = self.lv.endo(state.contraction)
        epi = self.lv.epi(endo, k, closed=True)
        th = self.theta
        deg = np.degrees(th)
        # RV crescent over the septum, from ~1 o'clock round to ~8 o'clock
        start, stop = -68.0, -232.0
        sel = np.where((deg <= start) | (deg >= stop + 360.0))[0]
        order = np.argsort(-(np.where(deg[sel] > 0, deg[sel] - 360.0, deg[sel])))
        sel = sel[order]
        inner = epi[sel]
        a = np.where(deg[sel] > 0, deg[sel] - 360.0, deg[sel])
        frac = (start - a) / (start - stop)
        bulge = self.rv_d * np.sin(math.pi * np.clip(frac, 0.0, 1.0)) ** 0.6 * (1.0 - 0.15 * state.contraction)
        radial = inner / np.hypot(inner[:, 0], inner[:, 1])[:, None]
        outer = inner + radial * (bulge + 0.05)[:, None]
        rv = spline(np.vstack([inner, outer[::-1]])[::2], 3, closed=True)
        eff = self.effusion
        sc.stroke(epi, 2 * (eff + PERICARDIUM_CM), PERICARDIUM, closed=True)
        sc.stroke(rv, 2 * (self.rv_wall + eff + PERICARDIUM_CM), PERICARDIUM, closed=True)
        if eff > 0:
            sc.stroke(epi, 2 * eff, FLUID, closed=True)
            sc.stroke(rv, 2 * (self.rv_wall + eff), FLUID, closed=True)
        sc.stroke(rv, 2 * self.rv_wall, MYOCARDIUM, closed=True)
        sc.fill(epi, MYOCARDIUM)
        sc.fill(rv, BLOOD)
        sc.fill(endo, BLOOD)
        sc.lv_cavity = endo
        for ang in (28.0, 148.0):
            i = int(np.argmin(np.abs(deg - ang)))
            base = endo[i]
            centre = base * (1.0 - (self.pm_r * 1.1) / max(float(np.hypot(*base)), 1e-6))
            rad = self.pm_r * (1.0 + 0.25 * k)
            pm = ellipse(
                float(centre[0]), float(centre[1]), rad * 1.15, rad, math.degrees(math.atan2(base[1], base[0])), 20
            )
            sc.fill(pm, MYOCARDIUM + 1.0)
            sc.lv_holes.append(pm)
        return sc.placed(self.place)


# --------------------------------------------------------------------------------------------------
# parasternal short axis at the aortic valve


class ShortAxisBase:
    """PSAX at the aortic-valve level: tricuspid aortic valve ("Mercedes" sign) in the centre, LA below,
    RA lower left, tricuspid valve on the left, RVOT arching over the top to the pulmonary valve and the
    main pulmonary artery on the right. Model frame: aortic valve centre at the origin."""

    def __init__(self, truth: StudyTruth, rng: np.random.Generator, *, doppler: bool = True) -> None:
        self.truth, self.doppler = truth, doppler
        self.ao_r = 0.5 * float(np.clip(2.4 + 0.1 * (truth.lvedd_cm - 4.8), 2.1, 2.9)) * jitter(rng, 0.04)
        self.la_d = (3.2 + 0.6 * truth.la_dilation) * jitter(rng, 0.05)
        self.la_w = (4.0 + 0.5 * truth.la_dilation) * jitter(rng, 0.05)
        self.ra_s = (3.1 + 0.5 * truth.ra_dilation) * jitter(rng, 0.05)
        self.rvot = (1.7 + 0.35 * truth.rv_dilation) * jitter(rng, 0.06)
        self.effusion = EFFUSION_CM[min(max(truth.effusion, 0), 3)]
        cy = 1.55 + 0.45 + self.rvot + 0.55 + self.ao_r + 0.3
        self.place = Placement(float(rng.normal(0.0, 4.0)), float(rng.normal(0.2, 0.3)), cy + float(rng.normal(0, 0.2)))
        self.depth_cm = float(np.clip(cy + self.ao_r + self.la_d + 3.0 + rng.normal(0.8, 0.4), 12.0, 18.0))
        r = self.ao_r
        self.doppler_roi = (
            self.place(points((-r - 4.2, -r - 1.2), (r + 1.4, -r - 1.2), (r + 1.4, r + 1.6), (-r - 4.2, r + 2.2)))
            if doppler
            else None
        )
        self.background: list[Shape] = []

    def scene(self, state: CardiacState) -> Scene:
        t = self.truth
        sc = Scene()
        r = self.ao_r * (1.0 + 0.03 * state.ejection)
        wall = 0.32
        # structures
        la_c = np.array([0.25, r + wall + 0.25 + 0.5 * self.la_d])
        la = ellipse(float(la_c[0]), float(la_c[1]), 0.5 * self.la_w, 0.5 * self.la_d, 0.0, 36)
        ra_c = np.array([-r - 0.9 - 0.45 * self.ra_s, r * 0.6 + 0.35 * self.ra_s])
        ra = ellipse(float(ra_c[0]), float(ra_c[1]), 0.55 * self.ra_s, 0.5 * self.ra_s, 20.0, 36)
        # RVOT: band arching from the tricuspid valve (left) over the aorta to the pulmonary valve (right)
        ang = np.radians(np.linspace(200.0, 345.0, 24))
        r_in = r + wall + 0.55
        r_out = r_in + self.rvot * (1.0 - 0.1 * state.contraction)
        inner = np.stack([r_in * np.cos(ang), r_in * np.sin(ang)], axis=1)
        outer = np.stack([r_out * np.cos(ang), r_out * np.sin(ang)], axis=1)
        tv_a = inner[0] + np.array([-0.2, 0.9])
        tv_b = outer[0] + np.array([-0.7, 1.1])
        rv = spline(np.vstack([tv_a, inner[::3], outer[::-3], tv_b]), 4, closed=True)
        pv = 0.5 * (inner[-1] + outer[-1])
        # main pulmonary artery: down and to the right, bending towards its bifurcation, out of the plane
        pa_dir = unit(np.array([0.45, 1.0]))
        pa_half = 0.5 * (r_out - r_in) * 1.05
        pn = np.array([-pa_dir[1], pa_dir[0]])
        s = np.linspace(0.0, 7.0, 15)
        bend = math.atan2(pa_dir[1], pa_dir[0]) - 0.5 * s / 7.0
        steps = np.stack([np.cos(bend), np.sin(bend)], axis=1) * 0.5
        pa_c = pv[None, :] + np.vstack([np.zeros(2), np.cumsum(steps[:-1], axis=0)])
        side = np.stack([-np.sin(bend), np.cos(bend)], axis=1) * (pa_half * (1.0 + 0.12 * s / 7.0))[:, None]
        pa = np.vstack([pa_c + side, (pa_c - side)[::-1]])
        eff = self.effusion
        for outline in (rv, la):
            sc.stroke(outline, 2 * (0.3 + 0.5 * eff + PERICARDIUM_CM), PERICARDIUM, closed=True)
        if eff > 0:
            sc.stroke(rv, 2 * (0.3 + eff), FLUID, closed=True)
        for outline, w in ((rv, 0.42), (la, 0.22), (ra, 0.22), (pa, 0.25)):
            sc.stroke(outline, 2 * w, ATRIAL_WALL, closed=True)
        aorta = ellipse(0.0, 0.0, r, r, 0.0, 40)
        sc.stroke(aorta, 2 * wall, VESSEL_WALL, closed=True)
        for outline in (rv, la, ra, pa):
            sc.fill(outline, BLOOD)
        sc.fill(aorta, BLOOD)
        # left atrial appendage lip and tricuspid leaflets
        to = state.tricuspid_open
        tv_c = 0.5 * (tv_a + tv_b) + np.array([0.3, -0.4])
        sc.stroke(leaflet(tv_a, tv_c, np.array([0.4, -1.0]), 1.3, to), 0.18, VALVE)
        sc.stroke(leaflet(tv_b, tv_c, np.array([0.1, -1.0]), 1.6, to), 0.18, VALVE)
        # pulmonary valve cusps
        po = state.aortic_open
        for sgn in (1.0, -1.0):
            hinge = pv + sgn * pn * pa_half
            tip = (1 - po) * pv + po * (hinge + pa_dir * 1.0)
            sc.stroke(np.vstack([hinge, tip]), 0.14, VALVE)
        # aortic valve: three cusps; closed = "Mercedes" Y, open = triangular orifice
        opening, thick = aortic_cusps(t, state.aortic_open)
        opening *= 0.78
        level = THICK_VALVE if t.av_thickened else VALVE
        comm = [math.radians(a) for a in (-50.0, -160.0, 90.0)]
        for i in range(3):
            a0, a1 = comm[i], comm[(i + 1) % 3]
            mid = math.atan2(math.sin(a0) + math.sin(a1), math.cos(a0) + math.cos(a1))
            p0 = r * np.array([math.cos(a0), math.sin(a0)])
            p1 = r * np.array([math.cos(a1), math.sin(a1)])
            m = opening * r * np.array([math.cos(mid), math.sin(mid)])
            sc.stroke(spline(np.vstack([p0, m, p1]), 4), thick, level)
        if self.doppler:
            self._flows(sc, state, r, tv_a, tv_b, tv_c, ra, ra_c, pv, pa_dir, pa)
        return sc.placed(self.place)

    def _flows(
        self,
        sc: Scene,
        state: CardiacState,
        r: float,
        tv_a: FloatArray,
        tv_b: FloatArray,
        tv_c: FloatArray,
        ra: FloatArray,
        ra_c: FloatArray,
        pv: FloatArray,
        pa_dir: FloatArray,
        pa: FloatArray,
    ) -> None:
        t = self.truth
        if state.ejection > 0.05:
            trunk = np.vstack([pa[:9], pa[-9:]])  # the first 4 cm of the artery
            sc.flows.append(Flow(trunk, (float(pa_dir[0]), float(pa_dir[1])), 1.0 * state.ejection))
        if state.tricuspid_open > 0.05:
            base = 0.5 * (tv_a + tv_b)
            inflow = oval(
                base + np.array([-0.1, 0.3]), base + np.array([0.8, -1.9]), 0.8 * float(np.hypot(*(tv_a - tv_b)))
            )
            sc.flows.append(Flow(inflow, (0.3, -1.0), 0.75 * state.tricuspid_open))
        if state.systole > 0.05 and t.tr > 0:
            ln = (0.0, 0.45, 0.72, 0.95)[t.tr] * self.ra_s * (0.55 + 0.45 * state.systole)
            wd = (0.0, 0.38, 0.62, 0.88)[t.tr] * self.ra_s * (0.6 + 0.4 * state.systole)
            sc.flows.append(Flow(plume(tv_c, ra_c - tv_c, ln, wd), (-0.3, 1.0), 3.5, True))
        if state.ejection > 0.05 and t.aortic_stenosis > 0:  # aliasing through the narrowed orifice
            rad = AS_OPENING[min(t.aortic_stenosis, 3)] * 0.6 * r + 0.25 * r
            sc.flows.append(Flow(ellipse(0.0, 0.0, rad, rad, 0.0, 16), (0.0, -1.0), 3.0 * state.ejection, True))
        if state.diastole > 0.05 and t.ar > 0:
            rad = AR_JET_WIDTH[min(t.ar, 3)] * r * (0.7 + 0.3 * state.diastole)
            sc.flows.append(Flow(ellipse(0.0, 0.0, rad, rad, 0.0, 16), (0.0, 1.0), 4.0, True))
