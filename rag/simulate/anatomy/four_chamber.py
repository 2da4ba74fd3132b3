"""The four-chamber family of views: apical four-chamber (A4C, and its colour-Doppler cine with mitral
and tricuspid inflow and regurgitant jets), two-chamber (A2C, no right heart), five-chamber (A5C, with
the LVOT and aortic valve) and subcostal (seen from below through the liver, with the IVC)."""

from __future__ import annotations

import numpy as np

from rag.simulate.anatomy.geometry import FloatArray, ellipse, leaflet, oval, plume, points, spline, unit
from rag.simulate.anatomy.heart import (
    EFFUSION_CM,
    PERICARDIUM_CM,
    aortic_cusps,
    grade_scale,
    jitter,
    long_axis_lv,
)
from rag.simulate.anatomy.scene import (
    ATRIAL_WALL,
    BLOOD,
    DIAPHRAGM,
    FLUID,
    LIVER,
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


class FourChamber:
    """Apical four-chamber anatomy (optionally without the right heart = A2C, with the LVOT = A5C, or seen
    from below = subcostal). Model frame: LV apex at the origin, LV base at (0, L), lateral wall at x > 0."""

    def __init__(
        self,
        truth: StudyTruth,
        rng: np.random.Generator,
        *,
        placement: Placement,
        right_heart: bool = True,
        lvot: bool = False,
        doppler: bool = False,
        subcostal: bool = False,
        wall_names: tuple[tuple[str, ...], tuple[str, ...]] = (
            ("septal", "inferoseptal", "septum"),
            ("lateral", "anterolateral"),
        ),
    ) -> None:
        self.truth, self.right_heart, self.lvot, self.doppler, self.subcostal = (
            truth,
            right_heart,
            lvot,
            doppler,
            subcostal,
        )
        self.place = placement
        w = truth.lvedd_cm * jitter(rng, 0.03)
        self.length = float(np.clip(1.72 * w * jitter(rng, 0.04) - 0.5 * max(w - 5.6, 0.0), 6.8, 11.5))
        self.width = w
        self.annulus = float(np.clip(0.6 * w, 2.6, 3.9))
        self.lv, self.z = long_axis_lv(self.length, w, self.annulus, truth, wall_names)
        self.n_side = (len(self.z) + 1) // 2
        self.effusion = EFFUSION_CM[min(max(truth.effusion, 0), 3)]
        self.rv_width = (2.9 + 0.75 * truth.rv_dilation) * jitter(rng, 0.05)
        self.rv_apex_z = 0.66 + 0.08 * truth.rv_dilation
        self.rv_motion = 0.35 if truth.rv_dysfunction else 1.0
        self.la_w = 3.5 * grade_scale(truth.la_dilation) * jitter(rng, 0.05)
        self.la_h = 4.4 * grade_scale(truth.la_dilation) * jitter(rng, 0.05)
        self.ra_w = 3.3 * grade_scale(truth.ra_dilation) * jitter(rng, 0.05)
        self.ra_h = 4.1 * grade_scale(truth.ra_dilation) * jitter(rng, 0.05)
        self.rv_wall = 0.42 if truth.rv_dilation < 2 else 0.5
        self.ias_x = -0.5 * self.annulus - 0.45 * truth.wall_cm
        self.ao_w = float(np.clip(2.0 + 0.1 * (w - 4.8), 1.8, 2.4))
        self.ivc = (2.4 if truth.ivc_dilated else 1.6) * jitter(rng, 0.05)
        self.ivc_collapse = 0.55 if truth.ivc_collapse else 0.12
        self.la_bottom = self.length + self.la_h
        if subcostal:  # mitral annulus a little left of the centre line, deep under the liver
            b = Placement(placement.angle, 0.0, 0.0)(points((0.0, self.length)))[0]
            self.place = Placement(
                placement.angle, -1.2 - b[0] + float(rng.normal(0, 0.3)), 13.2 - b[1] + float(rng.normal(0, 0.3))
            )
            self.background = self._background()
            self.depth_cm = depth_for(self.scene(cardiac_state(0.0, truth.heart_rate)), rng, 2.5, 18.0, 22.0)
        else:
            self.depth_cm = depth_for(self.scene(cardiac_state(0.0, truth.heart_rate)), rng, 1.6, 14.0, 20.0)
        self.doppler_roi = self._roi() if doppler else None
        if not subcostal:
            self.background = []

    def _roi(self) -> FloatArray:
        ll = self.length
        if self.right_heart:
            xs = (-0.5 * self.annulus - self.rv_width - 1.2, 0.5 * self.annulus + 0.9)
        else:
            xs = (-0.5 * self.annulus - 1.0, 0.5 * self.annulus + 1.0)
        return self.place(points((xs[0], ll - 3.2), (xs[1], ll - 3.2), (xs[1], ll + 3.8), (xs[0], ll + 3.8)))

    def _background(self) -> list[Shape]:
        if not self.subcostal:
            return []
        # liver in the near field with hepatic veins, bounded below by the diaphragm
        shapes: list[Shape] = []
        # model frame: the liver lies beyond the RV free wall (x < edge), which placement turns towards the probe
        edge = -(0.5 * self.annulus + self.truth.wall_cm + self.rv_width + 0.9 + self.effusion)
        y = np.linspace(-9.0, self.length + 11.0, 14)
        border = np.stack([edge - 0.018 * (y - 0.45 * self.length) ** 2, y], axis=1)
        liver = np.vstack([border, points((-30.0, y[-1]), (-30.0, y[0]))])
        shapes.append(Shape(self.place(liver), LIVER))
        for cx, cy, a, b, ang in (
            (edge - 3.2, 1.0, 1.8, 0.38, 70.0),
            (edge - 4.5, 6.5, 1.5, 0.32, 100.0),
            (edge - 2.2, 4.2, 0.5, 0.45, 0.0),
        ):
            shapes.append(Shape(self.place(ellipse(cx, cy, a, b, ang, 24)), BLOOD))
        shapes.append(Shape(self.place(border), DIAPHRAGM, 0.4, closed=False))
        return shapes

    # ---- per frame

    def scene(self, state: CardiacState) -> Scene:
        sc = Scene()
        endo, k = self.lv.endo(state.contraction)
        epi = self.lv.epi(endo, k, closed=False)
        myo = np.vstack([epi, endo[::-1]])
        n = self.n_side
        h_sept, h_lat = endo[0], endo[-1]
        base_c = 0.5 * (h_sept + h_lat)
        up = unit(endo[n - 1] - base_c)  # towards the apex
        lateral = np.array([-up[1], up[0]])
        if lateral[0] < 0:
            lateral = -lateral
        c_rv = state.contraction * self.rv_motion
        chambers: list[tuple[FloatArray, float, float]] = []  # (outline, wall width, effusion)

        # right ventricle: septal border along the LV epicardium, free wall spline
        rv = tv = None
        if self.right_heart:
            z_side = self.z[:n]
            sept = epi[:n]
            lo, hi = np.searchsorted(z_side, 0.06), np.searchsorted(z_side, self.rv_apex_z)
            sept_border = sept[lo:hi]
            t_s = sept_border[0]
            rv_apex = sept_border[-1]

            def fw(z: float, frac: float) -> FloatArray:
                p = sept[np.searchsorted(z_side, z)]
                shrink = 1.0 - 0.22 * c_rv * (1.0 - 0.5 * z)
                lift = 0.2 * c_rv * self.length * (1.0 - z) ** 1.5
                wall: FloatArray = p - lateral * self.rv_width * frac * shrink + up * lift
                return wall

            free = spline(
                np.vstack(
                    [
                        rv_apex,
                        fw(self.rv_apex_z - 0.13, 0.45),
                        fw(0.5 * self.rv_apex_z, 0.82),
                        fw(0.2, 1.0),
                        fw(0.02, 0.92),
                    ]
                ),
                6,
            )
            t_l = free[-1]
            rv = np.vstack([sept_border, free[1:]])
            tv = (t_s, t_l)
            chambers.append((rv, self.rv_wall, self.effusion))

        # atria below the annuli; the interatrial septum continues the crux downwards
        ias = self.ias_x
        la_top = 0.5 * (h_sept[1] + h_lat[1])
        x0 = ias + 0.17 if self.right_heart else float(base_c[0] - 0.5 * self.la_w)
        la_hinge_sept = h_sept
        aorta = None
        if self.lvot:
            amc = h_sept + (h_lat - h_sept) * (self.ao_w / float(np.hypot(*(h_lat - h_sept))))
            la_hinge_sept = amc
            x0 = float(amc[0] + 0.45)
            aorta = self._aorta(h_sept, amc, up, lateral)
        hh, wl = self.la_bottom - la_top, self.la_w
        if self.lvot:
            wl = max(wl * 0.8, float(h_lat[0] - x0 + 0.4))
        la = spline(
            np.vstack(
                [
                    la_hinge_sept,
                    (x0, la_top + 0.28 * hh),
                    (x0 + 0.02 * wl, la_top + 0.62 * hh),
                    (x0 + 0.2 * wl, la_top + 0.93 * hh),
                    (x0 + 0.58 * wl, la_top + 1.0 * hh),
                    (x0 + 0.9 * wl, la_top + 0.78 * hh),
                    (x0 + wl, la_top + 0.35 * hh),
                    h_lat,
                ]
            ),
            6,
        )
        chambers.append((la, 0.22, 0.0))
        ra = None
        if self.right_heart and tv is not None:
            t_s, t_l = tv
            ra_top = 0.5 * (t_s[1] + t_l[1])
            hr = self.length + self.ra_h - 0.3 - ra_top
            xr = ias - 0.17
            if self.lvot:
                xr = float(h_sept[0] - 0.4 - 0.5 * self.ao_w)
            wr = self.ra_w
            ra = spline(
                np.vstack(
                    [
                        t_l,
                        (xr - wr, ra_top + 0.35 * hr),
                        (xr - 0.92 * wr, ra_top + 0.8 * hr),
                        (xr - 0.55 * wr, ra_top + 1.0 * hr),
                        (xr - 0.15 * wr, ra_top + 0.92 * hr),
                        (xr, ra_top + 0.55 * hr),
                        (xr, ra_top + 0.2 * hr),
                        t_s + np.array([0.0, 0.1]),
                    ]
                ),
                6,
            )
            chambers.append((ra, 0.22, 0.0))

        eff = self.effusion
        # paint: pericardium, effusion, thin walls, LV myocardium, cavities, valves
        sc.stroke(myo, 2 * (eff + PERICARDIUM_CM), PERICARDIUM, closed=True)
        for outline, wall, e in chambers:
            if wall >= 0.3:  # atria: no bright rim of their own
                sc.stroke(outline, 2 * (wall + e + PERICARDIUM_CM), PERICARDIUM, closed=True)
        if eff > 0:
            sc.stroke(myo, 2 * eff, FLUID, closed=True)
            for outline, wall, e in chambers:
                if e > 0:
                    sc.stroke(outline, 2 * (wall + e), FLUID, closed=True)
        for outline, wall, _ in chambers:
            sc.stroke(outline, 2 * wall, ATRIAL_WALL if wall < 0.3 else MYOCARDIUM, closed=True)
        if aorta is not None:
            sc.stroke(aorta, 0.55, VESSEL_WALL, closed=True)
        sc.fill(myo, MYOCARDIUM)
        for outline, _, _ in chambers:
            sc.fill(outline, BLOOD)
        if aorta is not None:
            sc.fill(aorta, BLOOD)
        sc.fill(endo, BLOOD)
        sc.lv_cavity = endo
        sc.extent = [endo, la] + ([ra] if ra is not None else [])
        if self.right_heart and rv is not None:
            # pulmonary veins entering the LA roof, moderator band across the RV apex
            for fx in (0.22, 0.8):
                px = x0 + fx * wl
                sc.fill(
                    points(
                        (px - 0.35, self.la_bottom - 0.5),
                        (px + 0.35, self.la_bottom - 0.5),
                        (px + 0.45, self.la_bottom + 1.3),
                        (px - 0.25, self.la_bottom + 1.3),
                    ),
                    BLOOD,
                )
            z_side = self.z[:n]
            i = np.searchsorted(z_side, 0.56)
            a = epi[i]
            b = a - lateral * self.rv_width * 0.78 * (1.0 - 0.2 * c_rv) + up * 0.3
            sc.stroke(np.vstack([a, 0.5 * (a + b) + up * 0.25, b]), 0.32, MYOCARDIUM + 2.0)
        else:
            # coronary sinus in the inferior atrioventricular groove
            sc.stroke(
                ellipse(float(h_sept[0]) - 0.7, float(la_top) + 0.9, 0.45, 0.4, 0, 20), 0.2, ATRIAL_WALL, closed=True
            )
            sc.fill(ellipse(float(h_sept[0]) - 0.7, float(la_top) + 0.9, 0.45, 0.4, 0, 20), BLOOD)
        if not self.subcostal:
            # descending aorta behind the left atrium
            cx, cy = x0 + 0.7 * self.la_w, self.la_bottom + 1.7
            sc.stroke(ellipse(cx, cy, 1.05, 1.0, 0, 28), 0.5, VESSEL_WALL, closed=True)
            sc.fill(ellipse(cx, cy, 1.05, 1.0, 0, 28), BLOOD)

        # valves
        mo = state.mitral_open
        mv_h = la_hinge_sept if self.lvot else h_sept
        coapt = 0.5 * (mv_h + h_lat) + up * 0.45 + lateral * 0.12 * self.annulus
        aml = leaflet(mv_h, coapt, up - 0.45 * lateral, 0.62 * self.annulus + 0.6, mo)
        pml = leaflet(h_lat, coapt, up + 0.5 * lateral, 0.42 * self.annulus, mo)
        sc.stroke(aml, 0.2, VALVE)
        sc.stroke(pml, 0.2, VALVE)
        if tv is not None:
            t_s, t_l = tv
            tcoapt = 0.5 * (t_s + t_l) + up * 0.3
            to = state.tricuspid_open
            sc.stroke(leaflet(t_s, tcoapt, up + 0.35 * lateral, 1.4, to), 0.18, VALVE)
            sc.stroke(leaflet(t_l, tcoapt, up - 0.4 * lateral, 1.9, to), 0.18, VALVE)
        if aorta is not None:
            self._aortic_cusps(sc, h_sept, la_hinge_sept, up, state)

        if self.subcostal and ra is not None:
            self._ivc(sc, ra, state)
        if self.doppler:
            self._flows(sc, state, endo, h_sept, h_lat, up, lateral, coapt, tv, la, ra)
        return sc.placed(self.place)

    def _aorta(self, h_sept: FloatArray, amc: FloatArray, up: FloatArray, lateral: FloatArray) -> FloatArray:
        d = unit(-up - 0.25 * lateral)
        left = np.array([d[1], -d[0]])
        if np.dot(left, lateral) > 0:
            left = -left
        s = np.linspace(0.0, 6.0, 16)
        r0 = 0.5 * self.ao_w
        r = r0 + 0.4 * np.exp(-(((s - 1.0) / 0.7) ** 2)) + 0.15 * np.clip((s - 1.5) / 1.5, 0.0, 1.0)
        wall_a = h_sept[None, :] + s[:, None] * d[None, :] + (r - r0)[:, None] * left[None, :]
        wall_b = amc[None, :] + s[:, None] * d[None, :] - (r - r0)[:, None] * left[None, :]
        return np.vstack([wall_a, wall_b[::-1]])

    def _aortic_cusps(
        self, sc: Scene, h_a: FloatArray, h_b: FloatArray, into_lv: FloatArray, state: CardiacState
    ) -> None:
        t = self.truth
        axis = -into_lv
        centre = 0.5 * (h_a + h_b) + 0.85 * axis
        opening, width = aortic_cusps(t, state.aortic_open)
        level = THICK_VALVE if t.av_thickened else VALVE
        for hinge in (h_a, h_b):
            inward = unit(centre - hinge)
            open_tip = hinge + 1.2 * unit(axis + 0.08 * inward)
            tip = (1 - opening) * centre + opening * open_tip
            sc.stroke(np.vstack([hinge, 0.5 * (hinge + tip) + 0.1 * axis, tip]), width, level)

    def _ivc(self, sc: Scene, ra: FloatArray, state: CardiacState) -> None:
        """Inferior vena cava entering the RA from the liver side; its diameter collapses on inspiration."""
        bottom = ra[int(np.argmax(ra[:, 1] - 0.3 * ra[:, 0]))]
        diam = self.ivc * (1.0 - self.ivc_collapse * state.respiration) * (1.0 + 0.04 * state.systole)
        d = unit(np.array([-0.35, 1.0]))
        p = np.array([-d[1], d[0]])
        s = np.linspace(-0.5, 9.0, 12)
        centre = bottom[None, :] + s[:, None] * d[None, :] + (0.25 * np.sin(s / 3.0))[:, None] * p[None, :]
        half = 0.5 * diam * (1.0 + 0.25 * np.exp(-(((s + 0.2) / 0.8) ** 2)))
        tube = np.vstack([centre + half[:, None] * p, (centre - half[:, None] * p)[::-1]])
        sc.stroke(tube, 0.4, VESSEL_WALL, closed=True)
        sc.fill(tube, BLOOD)
        hv = np.vstack([centre[4] + p * half[4], centre[4] + p * 2.2 + d * 1.6])
        sc.stroke(hv, 0.7, BLOOD)

    def _flows(
        self,
        sc: Scene,
        state: CardiacState,
        endo: FloatArray,
        h_sept: FloatArray,
        h_lat: FloatArray,
        up: FloatArray,
        lateral: FloatArray,
        coapt: FloatArray,
        tv: tuple[FloatArray, FloatArray] | None,
        la: FloatArray,
        ra: FloatArray | None,
    ) -> None:
        t = self.truth
        ll = self.length
        if state.mitral_open > 0.05:
            base = 0.5 * (h_sept + h_lat)
            inflow = oval(base - 0.3 * up, base + up * 0.5 * ll + lateral * 0.2, 0.85 * self.annulus)
            sc.flows.append(Flow(inflow, (float(up[0]), float(up[1])), 1.15 * state.mitral_open))
        if tv is not None and state.tricuspid_open > 0.05:
            t_s, t_l = tv
            base = 0.5 * (t_s + t_l)
            inflow = oval(base - 0.3 * up, base + up * 0.4 * ll - lateral * 0.2, 0.8 * float(np.hypot(*(t_s - t_l))))
            sc.flows.append(Flow(inflow, (float(up[0]), float(up[1])), 0.8 * state.tricuspid_open))
        if state.systole > 0.05:
            if t.mr > 0:
                la_c = la.mean(axis=0)
                ln = (0.0, 0.4, 0.68, 0.92)[t.mr] * self.la_h * (0.55 + 0.45 * state.systole)
                wd = (0.0, 0.38, 0.62, 0.88)[t.mr] * self.la_w * (0.6 + 0.4 * state.systole)
                neck = 0.2 + 0.15 * t.mr
                sc.flows.append(
                    Flow(
                        plume(coapt + 0.1 * up, la_c - coapt, ln, wd, neck=neck),
                        (float(-up[0]), float(-up[1])),
                        4.0,
                        True,
                    )
                )
                if t.mr >= 2:  # proximal flow convergence on the LV side of the valve
                    r = 0.15 + 0.15 * t.mr
                    pisa = ellipse(float(coapt[0] + 0.5 * up[0]), float(coapt[1] + 0.5 * up[1]), r, r, 0.0, 16)
                    sc.flows.append(Flow(pisa, (float(-up[0]), float(-up[1])), 1.6))
            if t.tr > 0 and tv is not None and ra is not None:
                t_s, t_l = tv
                start = 0.5 * (t_s + t_l) + up * 0.3
                ra_c = ra.mean(axis=0)
                ln = (0.0, 0.4, 0.68, 0.92)[t.tr] * self.ra_h * (0.55 + 0.45 * state.systole)
                wd = (0.0, 0.38, 0.62, 0.88)[t.tr] * self.ra_w * (0.6 + 0.4 * state.systole)
                sc.flows.append(
                    Flow(
                        plume(start + 0.2 * up, ra_c - start, ln, wd, neck=0.2 + 0.13 * t.tr),
                        (float(-up[0]), float(-up[1])),
                        3.5,
                        True,
                    )
                )
        # pulmonary venous inflow into the LA roof
        la_c = la.mean(axis=0)
        sc.flows.append(
            Flow(
                ellipse(float(la_c[0]), float(la_c[1]) + 0.3 * self.la_h, 0.5, 0.7, 0, 16),
                (float(up[0]), float(up[1])),
                0.35 * (1.0 - 0.5 * state.contraction),
            )
        )
