"""The long-axis family of views: parasternal long axis (PLAX, and its colour-Doppler cine with mitral
inflow, LVOT flow, aortic stenosis, mitral and aortic regurgitant jets) and, rotated upright, the
apical three-chamber view (A3C)."""

from __future__ import annotations

import numpy as np

from rag.simulate.anatomy.geometry import (
    FloatArray,
    ellipse,
    leaflet,
    outward_normals,
    oval,
    plume,
    points,
    rotate,
    smooth_open,
    spline,
)
from rag.simulate.anatomy.heart import (
    AR_JET_CM,
    AR_JET_WIDTH,
    AS_JET,
    EFFUSION_CM,
    PERICARDIUM_CM,
    aortic_cusps,
    jitter,
    long_axis_lv,
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
    depth_for,
)
from rag.simulate.anatomy.timing import CardiacState, cardiac_state
from rag.simulate.truth import StudyTruth


class LongAxis:
    """Parasternal long-axis anatomy (RVOT, septum, LV, posterior wall, aortic root and valve, LA,
    coronary sinus, descending aorta). Model frame: LV apex at the origin, base at (L, 0), septum at y < 0.
    Rotated upright it is the apical three-chamber view."""

    def __init__(
        self,
        truth: StudyTruth,
        rng: np.random.Generator,
        *,
        apical: bool = False,
        doppler: bool = False,
    ) -> None:
        self.truth, self.apical, self.doppler = truth, apical, doppler
        w = truth.lvedd_cm * jitter(rng, 0.03)
        self.width = w
        self.length = float(np.clip(1.72 * w * jitter(rng, 0.04) - 0.5 * max(w - 5.6, 0.0), 6.8, 11.5))
        self.annulus = (0.8 if apical else 0.9) * w
        names = (("anteroseptal", "septal", "septum"), ("posterior", "inferolateral"))
        lv, z = long_axis_lv(self.length, w, self.annulus, truth, names)
        # model frame: rotate so the apex is on the left and the septum (side -1) on top
        rot = Placement(90.0, 0.0, 0.0)  # (x, y) -> (-y, x): base (0, L) -> (-L, 0)
        flip = np.array([-1.0, 1.0])
        lv.ed = rot(lv.ed) * flip
        lv.motion = rot(lv.motion) * flip
        self.lv, self.z = lv, z
        self.n_side = (len(z) + 1) // 2
        self.effusion = EFFUSION_CM[min(max(truth.effusion, 0), 3)]
        self.ao_w = float(np.clip(2.0 + 0.1 * (w - 4.8), 1.8, 2.4))
        self.ao_dir = rotate(np.array([1.0, 0.0]), -float(rng.normal(5.0, 3.0)))
        self.la_d = (3.3 + 0.62 * truth.la_dilation) * jitter(rng, 0.05)
        self.la_len = (4.3 + 0.45 * truth.la_dilation) * jitter(rng, 0.05)
        self.rv_d = (2.1 + 0.6 * truth.rv_dilation) * jitter(rng, 0.06)
        self.rv_wall = 0.42
        tilt = -float(rng.normal(5.0, 2.5))
        if apical:
            base = Placement(90.0 + float(rng.normal(0.0, 3.0)), 0.0, 0.0)
            apex = base(points((0.0, 0.0)))[0]
            self.place = Placement(
                base.angle, 0.25 - apex[0] + float(rng.normal(0, 0.2)), 2.7 - apex[1] + float(rng.normal(0, 0.15))
            )
        else:
            base = Placement(tilt, 0.0, 0.0)
            top = base(points((0.55 * self.length, -0.5 * w - truth.wall_cm - self.rv_d - self.rv_wall)))[0]
            b = base(points((self.length, 0.0)))[0]
            self.place = Placement(
                tilt, 1.9 - b[0] + float(rng.normal(0, 0.25)), 2.2 - top[1] + float(rng.normal(0, 0.15))
            )
        self.doppler_roi = self._roi() if doppler else None
        self.background: list[Shape] = []
        self.depth_cm = depth_for(
            self.scene(cardiac_state(0.0, truth.heart_rate)), rng, 1.2 if apical else 4.0, 14.0, 20.0
        )

    def _roi(self) -> FloatArray:
        ll, a = self.length, self.annulus
        return self.place(
            points(
                (ll - 3.2, -0.5 * a - 0.6),
                (ll + 3.0, -0.5 * a - 1.0),
                (ll + 5.2, -0.5 * a + 0.5 * self.ao_w),  # the aortic root, where a stenotic jet aliases
                (ll + 3.0, 0.5 * a + self.la_d * 0.8),
                (ll - 3.2, 0.5 * a + 0.6),
            )
        )

    def _root(
        self, h_sept: FloatArray, amc: FloatArray, state: CardiacState
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        d = self.ao_dir
        n_up = np.array([d[1], -d[0]])
        s = np.linspace(0.0, 7.5, 18)
        r0 = 0.5 * self.ao_w
        pulse = 1.0 + 0.04 * state.ejection
        r = (r0 + 0.45 * np.exp(-(((s - 1.1) / 0.75) ** 2)) + 0.2 * np.clip((s - 1.6) / 1.5, 0.0, 1.0)) * pulse
        upper = h_sept[None, :] + s[:, None] * d[None, :] + (r - r0)[:, None] * n_up[None, :]
        lower = amc[None, :] + s[:, None] * d[None, :] - (r - r0)[:, None] * n_up[None, :]
        return upper, lower, n_up

    def scene(self, state: CardiacState) -> Scene:
        t = self.truth
        sc = Scene()
        endo, k = self.lv.endo(state.contraction)
        epi = self.lv.epi(endo, k, closed=False)
        myo = np.vstack([epi, endo[::-1]])
        n = self.n_side
        h_sept, h_post = endo[0], endo[-1]
        amc = h_sept + (h_post - h_sept) * (self.ao_w / float(np.hypot(*(h_post - h_sept))))
        upper, lower, n_up = self._root(h_sept, amc, state)
        aorta = np.vstack([upper, lower[::-1]])
        d = self.ao_dir
        down = -n_up
        # left atrium behind the aortic root
        dd, ln = self.la_d, self.la_len

        def below(s: float, frac: float) -> FloatArray:
            result: FloatArray = amc + s * d + down * (0.45 + frac * dd)
            return result

        la = spline(
            np.vstack(
                [
                    h_post,
                    below(0.6, 0.93),
                    below(0.45 * ln, 1.02),
                    below(ln - 0.9, 0.9),
                    below(ln - 0.05, 0.52),
                    below(ln - 0.7, 0.1),
                    below(0.5 * ln, 0.0),
                    below(0.9, 0.02),
                    amc + 0.2 * d,
                ]
            ),
            6,
        )
        chambers: list[tuple[FloatArray, float, float]] = [(la, 0.22, 0.0)]
        rv = None
        if not self.apical:
            sept = epi[: int(np.searchsorted(self.z[:n], 0.86))]
            a_out = upper + n_up * 0.3
            lower_border = np.vstack([a_out[::-1][:-1], sept])
            lower_border = np.stack([smooth_open(lower_border[:, 0], 4), smooth_open(lower_border[:, 1], 4)], axis=1)
            normals = outward_normals(lower_border, lower_border.mean(axis=0), closed=False)
            normals[normals[:, 1] > 0] *= -1.0  # away from the LV: towards the chest wall
            frac = np.linspace(0.0, 1.0, len(lower_border))
            taper = 1.0 - 0.75 * np.clip((frac - 0.55) / 0.45, 0.0, 1.0) ** 1.5
            depth = self.rv_d * taper * (1.0 - 0.12 * state.contraction)
            upper_border = lower_border + normals * depth[:, None]
            rv = np.vstack([lower_border, upper_border[::-1]])
            rv = spline(rv[::2], 3, closed=True)
            chambers.append((rv, self.rv_wall, self.effusion))

        eff = self.effusion
        sc.stroke(myo, 2 * (eff + PERICARDIUM_CM), PERICARDIUM, closed=True)
        for outline, wall, e in chambers:
            if wall >= 0.3:  # atria: no bright rim of their own
                sc.stroke(outline, 2 * (wall + e + PERICARDIUM_CM), PERICARDIUM, closed=True)
        if eff > 0:
            sc.stroke(myo, 2 * eff, FLUID, closed=True)
            for outline, wall, e in chambers:
                if e > 0:
                    sc.stroke(outline, 2 * (wall + e), FLUID, closed=True)
        # descending aorta behind the posterior atrioventricular groove (outside the pericardium)
        da_c = h_post + down * 0.2 + d * 1.4 + np.array([0.0, 1.0]) * (1.25 + eff)
        if not self.apical:
            da = ellipse(float(da_c[0]), float(da_c[1]) + 0.3, 1.05, 0.95, 0, 28)
            sc.stroke(da, 0.5, VESSEL_WALL, closed=True)
            sc.fill(da, BLOOD)
        for outline, wall, _ in chambers:
            sc.stroke(outline, 2 * wall, ATRIAL_WALL if wall < 0.3 else MYOCARDIUM, closed=True)
        sc.stroke(aorta, 0.75, VESSEL_WALL, closed=True)
        sc.fill(myo, MYOCARDIUM)
        for outline, _, _ in chambers:
            sc.fill(outline, BLOOD)
        sc.fill(aorta, BLOOD)
        sc.fill(endo, BLOOD)
        sc.lv_cavity = endo
        sc.extent = [endo, la]
        # coronary sinus in the posterior atrioventricular groove
        cs = ellipse(float(h_post[0]) + 0.25, float(h_post[1]) + 0.55 + 0.5 * t.wall_cm, 0.42, 0.38, 0, 20)
        sc.stroke(cs, 0.22, ATRIAL_WALL, closed=True)
        sc.fill(cs, BLOOD)

        # mitral valve: anterior leaflet from the aortic-mitral continuity, posterior from the groove
        mo = state.mitral_open
        into_lv = np.array([-1.0, 0.0])
        coapt = amc + 0.62 * (h_post - amc) + into_lv * 0.55
        sc.stroke(leaflet(amc, coapt, into_lv + np.array([0.0, -0.55]), 0.55 * self.width, mo), 0.2, VALVE)
        sc.stroke(leaflet(h_post, coapt, into_lv + np.array([0.0, 0.6]), 0.32 * self.width, mo), 0.2, VALVE)
        # aortic valve: right coronary (anterior) and non-coronary (posterior) cusps
        opening, width = aortic_cusps(t, state.aortic_open)
        level = THICK_VALVE if t.av_thickened else VALVE
        centre = 0.5 * (upper[3] + lower[3])
        for wall_pts, sgn in ((upper, -1.0), (lower, 1.0)):
            hinge = wall_pts[1]
            open_tip = wall_pts[4] + sgn * n_up * 0.12
            tip = (1 - opening) * centre + opening * open_tip
            sc.stroke(np.vstack([hinge, 0.5 * (hinge + tip) - sgn * 0.1 * n_up * (1 - opening), tip]), width, level)
        if self.doppler:
            self._flows(sc, state, amc, h_post, coapt, la, upper, lower)
        return sc.placed(self.place)

    def _flows(
        self,
        sc: Scene,
        state: CardiacState,
        amc: FloatArray,
        h_post: FloatArray,
        coapt: FloatArray,
        la: FloatArray,
        upper: FloatArray,
        lower: FloatArray,
    ) -> None:
        t = self.truth
        d = self.ao_dir
        if state.mitral_open > 0.05:
            base = 0.5 * (amc + h_post)
            inflow = oval(
                base + np.array([0.3, 0.0]), base + np.array([-3.2, -0.3]), 0.85 * float(np.hypot(*(h_post - amc)))
            )
            sc.flows.append(Flow(inflow, (-0.9, -0.3), 0.9 * state.mitral_open))
        if state.ejection > 0.05:
            lvot = oval(
                0.5 * (upper[0] + lower[0]) + np.array([-2.4, 0.3]), 0.5 * (upper[6] + lower[6]), 0.85 * self.ao_w
            )
            sc.flows.append(Flow(lvot, (float(d[0]), float(d[1])), 0.85 * state.ejection))
            if t.aortic_stenosis >= 1:
                ln, wd = AS_JET[min(t.aortic_stenosis, 3)]
                jet = plume(0.5 * (upper[3] + lower[3]), d, ln * (0.6 + 0.4 * state.ejection), wd * self.ao_w)
                sc.flows.append(Flow(jet, (float(d[0]), float(d[1])), 3.0, True))
        if state.systole > 0.05 and t.mr > 0:
            target = la.mean(axis=0) + 0.4 * d
            ln = (0.0, 0.38, 0.66, 0.9)[t.mr] * self.la_len * (0.55 + 0.45 * state.systole)
            wd = (0.0, 0.38, 0.62, 0.88)[t.mr] * self.la_d * (0.6 + 0.4 * state.systole)
            o = coapt + np.array([0.25, 0.0])
            sc.flows.append(Flow(plume(o, target - o, ln, wd), (float(d[0]), float(-d[1])), 4.0, True))
        if state.diastole > 0.05 and t.ar > 0:
            o = 0.5 * (upper[3] + lower[3])
            ln = AR_JET_CM[min(t.ar, 3)] * (0.6 + 0.4 * state.diastole)
            wd = AR_JET_WIDTH[min(t.ar, 3)] * self.ao_w
            sc.flows.append(Flow(plume(o, np.array([-1.0, 0.12]), ln, wd), (-1.0, 0.1), 4.0, True))
