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
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from rag.simulate.truth import StudyTruth

FloatArray = npt.NDArray[np.float64]

# Echogenicity of each kind of structure, dB below the brightest reflector (before speckle and gain).
BLOOD = -54.0
FLUID = -56.0
MYOCARDIUM = -17.0
ATRIAL_WALL = -15.0
VALVE = -10.0
THICK_VALVE = -4.0
PERICARDIUM = -5.0
VESSEL_WALL = -9.0
LIVER = -21.0
DIAPHRAGM = -8.0
TISSUE = -31.0
FAT = -18.0

DOPPLER_VIEWS: frozenset[str] = frozenset({"Apical_Doppler", "Doppler_Parasternal_Long", "Doppler_Parasternal_Short"})

_EFFUSION_CM = (0.0, 0.3, 0.7, 1.2)  # echo-free pericardial space by EFFUSION_GRADES
_PERICARDIUM_CM = 0.22


# --------------------------------------------------------------------------------------------------
# cardiac timing


@dataclass(frozen=True)
class CardiacState:
    """Where one frame falls in the cardiac and respiratory cycles; every field is 0-1."""

    phase: float  # time since the last R wave / RR interval
    contraction: float  # 0 at end-diastole, 1 at end-systole (LV area follows it exactly)
    mitral_open: float
    tricuspid_open: float
    aortic_open: float
    systole: float  # envelope of ventricular systole incl. isovolumic phases (MR, TR jets)
    ejection: float  # envelope of ejection (outflow tract velocities)
    diastole: float  # envelope of diastole (AR jet), largest in early diastole
    respiration: float  # 0 end-expiration, 1 peak inspiration


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


def systole_seconds(heart_rate: float) -> float:
    """Time from the R wave to end-systole (aortic valve closure), shortening with heart rate."""
    rr = 60.0 / heart_rate
    return float(min(max(0.506 - 0.0021 * heart_rate, 0.22), 0.55 * rr))


def cardiac_state(t: float, heart_rate: float, respiration: float = 0.0) -> CardiacState:
    """The state at ``t`` seconds after an R wave (R waves every 60/heart_rate s)."""
    rr = 60.0 / heart_rate
    tau = t % rr
    ts = systole_seconds(heart_rate)
    ivc, ivr = 0.05, 0.07
    diastole_len = max(rr - ts - ivr, 0.05)
    kick = min(0.13, 0.32 * diastole_len)
    # contraction
    if tau < ivc:
        c = 0.0
    elif tau < ts:
        c = 0.5 * (1.0 - math.cos(math.pi * (tau - ivc) / (ts - ivc)))
    elif tau < ts + ivr:
        c = 1.0
    else:
        d = tau - ts - ivr
        c = 0.16 + 0.84 * math.exp(-d / 0.075) - 0.05 * d / diastole_len
        if tau > rr - kick:
            c *= 1.0 - _smoothstep((tau - (rr - kick)) / kick)
    # atrioventricular valves: E wave after isovolumic relaxation, A wave with the atrial kick
    av_valve = 0.0
    if ts + ivr <= tau < rr - 0.025:
        d = tau - ts - ivr
        e_wave = min(d / 0.035, 1.0) * (0.35 + 0.65 * math.exp(-max(d - 0.05, 0.0) / 0.08))
        a_start = rr - kick - 0.02
        a_wave = 0.9 * math.sin(math.pi * min(max((tau - a_start) / (kick - 0.005), 0.0), 1.0))
        av_valve = max(e_wave, a_wave) * min((rr - 0.025 - tau) / 0.02, 1.0)
    aortic = 0.0
    ejection = 0.0
    if ivc <= tau < ts:
        x = (tau - ivc) / (ts - ivc)
        aortic = math.sin(math.pi * x) ** 0.3
        ejection = math.sin(math.pi * x**0.8)
    systole = 0.0
    sys_end = ts + 0.8 * ivr
    if 0.015 <= tau < sys_end:
        systole = math.sin(math.pi * (tau - 0.015) / (sys_end - 0.015)) ** 0.45
    diastole = 0.0
    if ts + 0.01 <= tau < rr - 0.01:
        x = (tau - ts - 0.01) / max(rr - ts - 0.02, 1e-3)
        diastole = min((tau - ts - 0.01) / 0.03, 1.0) * (1.0 - 0.45 * x)
    return CardiacState(
        phase=tau / rr,
        contraction=float(c),
        mitral_open=float(av_valve),
        tricuspid_open=float(av_valve),
        aortic_open=float(aortic),
        systole=float(systole),
        ejection=float(ejection),
        diastole=float(diastole),
        respiration=float(respiration),
    )


def ecg_mv(tau: FloatArray, heart_rate: float) -> FloatArray:
    """ECG amplitude (mV) at times ``tau`` (s) since the nearest preceding R wave: P, QRS and T waves."""
    rr = 60.0 / heart_rate
    ts = systole_seconds(heart_rate)
    out = np.zeros_like(tau)
    for shift in (-rr, 0.0, rr):  # neighbouring beats contribute to waves near the boundaries
        x = tau - shift
        out += 0.12 * np.exp(-(((x + 0.16) / 0.028) ** 2))  # P
        out -= 0.10 * np.exp(-(((x + 0.022) / 0.009) ** 2))  # Q
        out += 1.00 * np.exp(-((x / 0.011) ** 2))  # R
        out -= 0.22 * np.exp(-(((x - 0.025) / 0.011) ** 2))  # S
        out += 0.28 * np.exp(-(((x - (ts - 0.09)) / 0.055) ** 2))  # T
    return out


# --------------------------------------------------------------------------------------------------
# scenes


@dataclass(frozen=True)
class Shape:
    """A polygon (``width == 0``: filled) or polyline stroke of ``width`` cm, drawn at ``level`` dB."""

    points: FloatArray  # (N, 2) cm
    level: float
    width: float = 0.0
    closed: bool = True


@dataclass(frozen=True)
class Flow:
    """Blood moving inside ``points`` (polygon, cm) along ``direction``; speed in Nyquist-limit units."""

    points: FloatArray  # (N, 2) cm
    direction: tuple[float, float]
    speed: float
    turbulent: bool = False


@dataclass
class Scene:
    """Everything one frame shows, in paint order."""

    shapes: list[Shape] = field(default_factory=list)
    lv_cavity: FloatArray | None = None  # (N, 2) cm, the echo-free LV cavity outline
    lv_holes: list[FloatArray] = field(default_factory=list)  # bright structures inside it (papillary muscles)
    flows: list[Flow] = field(default_factory=list)
    extent: list[FloatArray] = field(default_factory=list)  # outlines the imaging depth must cover

    def fill(self, points: FloatArray, level: float) -> None:
        self.shapes.append(Shape(points, level))

    def stroke(self, points: FloatArray, width: float, level: float, *, closed: bool = False) -> None:
        if width > 0:
            self.shapes.append(Shape(points, level, width, closed))

    def placed(self, place: Placement) -> Scene:
        return Scene(
            shapes=[Shape(place(s.points), s.level, s.width, s.closed) for s in self.shapes],
            lv_cavity=None if self.lv_cavity is None else place(self.lv_cavity),
            lv_holes=[place(h) for h in self.lv_holes],
            flows=[Flow(place(f.points), place.direction(f.direction), f.speed, f.turbulent) for f in self.flows],
            extent=[place(e) for e in self.extent],
        )


def _depth_for(scene: Scene, rng: np.random.Generator, margin: float, lo: float, hi: float) -> float:
    """Imaging depth that shows the scene's ``extent`` with ``margin`` cm to spare (plus operator variation)."""
    bottom = max(float(e[:, 1].max()) for e in scene.extent)
    return float(np.clip(bottom + margin + rng.normal(0.0, 0.5), lo, hi))


@dataclass(frozen=True)
class Placement:
    """A rigid motion of a heart model into the view: rotate by ``angle`` degrees (clockwise on the screen,
    about the model origin), then translate by ``(tx, ty)`` cm."""

    angle: float
    tx: float
    ty: float

    def _matrix(self) -> FloatArray:
        a = math.radians(self.angle)
        return np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])

    def __call__(self, points: FloatArray) -> FloatArray:
        moved: FloatArray = np.asarray(points, dtype=np.float64) @ self._matrix().T + np.array([self.tx, self.ty])
        return moved

    def direction(self, d: tuple[float, float]) -> tuple[float, float]:
        x, y = self._matrix() @ np.array(d, dtype=np.float64)
        return float(x), float(y)

    def then(self, dx: float, dy: float) -> Placement:
        return Placement(self.angle, self.tx + dx, self.ty + dy)


class ViewModel(Protocol):
    """The anatomy of one clip of one view."""

    depth_cm: float  # imaging depth the sonographer would choose for this heart
    doppler_roi: FloatArray | None  # (N, 2) cm points the colour box must cover, None without colour
    background: list[Shape]  # static structures outside the heart (chest wall layers, liver, ...)

    def scene(self, state: CardiacState) -> Scene: ...


# --------------------------------------------------------------------------------------------------
# geometry helpers


def _pts(*xy: tuple[float, float]) -> FloatArray:
    return np.array(xy, dtype=np.float64)


def spline(ctrl: FloatArray, n: int = 8, *, closed: bool = False) -> FloatArray:
    """Uniform Catmull-Rom curve through the control points ``ctrl`` (K, 2): (n*(K-1)+1, 2), or (n*K, 2)
    when ``closed``."""
    p = np.asarray(ctrl, dtype=np.float64)
    ext = np.vstack([p[-1:], p, p[:2]]) if closed else np.vstack([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])
    t = np.linspace(0.0, 1.0, n, endpoint=False)[:, None]
    t2, t3 = t * t, t * t * t
    segs = []
    for i in range(len(ext) - 3):
        p0, p1, p2, p3 = ext[i], ext[i + 1], ext[i + 2], ext[i + 3]
        segs.append(
            0.5 * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2 + (-p0 + 3 * p1 - 3 * p2 + p3) * t3)
        )
    out = np.vstack(segs)
    return out if closed else np.vstack([out, p[-1:]])


def ellipse(cx: float, cy: float, a: float, b: float, angle: float = 0.0, n: int = 40) -> FloatArray:
    """(n, 2) points of an ellipse with semi-axes ``a`` (along ``angle`` degrees) and ``b``."""
    t = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    ca, sa = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    x, y = a * np.cos(t), b * np.sin(t)
    return np.stack([cx + ca * x - sa * y, cy + sa * x + ca * y], axis=1)


def _unit(v: FloatArray | tuple[float, float]) -> FloatArray:
    a = np.asarray(v, dtype=np.float64)
    return a / max(float(np.hypot(a[0], a[1])), 1e-9)


def _rot(v: FloatArray, degrees: float) -> FloatArray:
    a = math.radians(degrees)
    return np.array([math.cos(a) * v[0] - math.sin(a) * v[1], math.sin(a) * v[0] + math.cos(a) * v[1]])


def plume(
    origin: FloatArray, direction: FloatArray, length: float, width: float, n: int = 14, neck: float = 0.3
) -> FloatArray:
    """(2n, 2) outline of a regurgitant jet: a vena contracta ``neck`` cm wide widening into a rounded flame."""
    d = _unit(direction)
    p = np.array([-d[1], d[0]])
    s = np.linspace(0.0, 1.0, n)
    half = 0.5 * width * np.sin(0.5 * math.pi * np.minimum(s / 0.5, 1.0)) ** 0.7
    half = np.maximum(half, 0.5 * neck)
    tail = s > 0.72
    half[tail] *= np.sqrt(np.clip(1.0 - ((s[tail] - 0.72) / 0.28) ** 2, 0.0, 1.0))
    axis = origin[None, :] + (s * length)[:, None] * d[None, :]
    left = axis + half[:, None] * p[None, :]
    right = axis - half[:, None] * p[None, :]
    return np.vstack([left, right[::-1]])


def oval(start: FloatArray, end: FloatArray, width: float, n: int = 24) -> FloatArray:
    """(n, 2) outline of an egg-shaped flow region from ``start`` to ``end``, ``width`` cm at its widest."""
    c = 0.5 * (start + end)
    d = end - start
    half = 0.5 * float(np.hypot(d[0], d[1]))
    ang = math.degrees(math.atan2(d[1], d[0]))
    pts = ellipse(float(c[0]), float(c[1]), half, 0.5 * width, ang, n)
    return pts


def _normals(curve: FloatArray, centre: FloatArray, *, closed: bool) -> FloatArray:
    """Unit normals of a polyline (N, 2), oriented away from ``centre``."""
    tangent = np.roll(curve, -1, axis=0) - np.roll(curve, 1, axis=0) if closed else np.gradient(curve, axis=0)
    n = np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)
    n /= np.maximum(np.hypot(n[:, 0], n[:, 1]), 1e-9)[:, None]
    flip = np.sum(n * (curve - centre[None, :]), axis=1) < 0
    n[flip] *= -1
    return n


def _polygon_area(p: FloatArray) -> float:
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def _smooth_closed(values: FloatArray, passes: int = 3) -> FloatArray:
    v = values.copy()
    for _ in range(passes):
        v = 0.25 * np.roll(v, 1) + 0.5 * v + 0.25 * np.roll(v, -1)
    return v


def _smooth_open(values: FloatArray, passes: int = 3) -> FloatArray:
    v = values.copy()
    for _ in range(passes):
        inner = 0.25 * v[:-2] + 0.5 * v[1:-1] + 0.25 * v[2:]
        v = np.concatenate([v[:1], inner, v[-1:]])
    return v


def _leaflet(
    hinge: FloatArray, closed_tip: FloatArray, open_dir: FloatArray, length: float, opening: float
) -> FloatArray:
    """A valve leaflet from ``hinge``: towards ``closed_tip`` when shut, swung along ``open_dir`` when open."""
    to_closed = closed_tip - hinge
    a_closed = math.atan2(to_closed[1], to_closed[0])
    a_open = math.atan2(open_dir[1], open_dir[0])
    delta = (a_open - a_closed + math.pi) % (2 * math.pi) - math.pi
    a = a_closed + opening * delta
    ln = (1 - opening) * float(np.hypot(*to_closed)) + opening * length
    tip = hinge + ln * np.array([math.cos(a), math.sin(a)])
    mid = 0.5 * (hinge + tip) + 0.08 * ln * np.array([-math.sin(a), math.cos(a)]) * (1 - opening)
    return np.vstack([hinge, mid, tip])


# --------------------------------------------------------------------------------------------------
# wall motion


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


class _Ventricle:
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
        a0 = _polygon_area(ed)
        a1 = 0.5 * float(
            np.dot(x0, np.roll(dy, -1))
            - np.dot(np.roll(x0, -1), dy)
            + np.dot(dx, np.roll(y0, -1))
            - np.dot(np.roll(dx, -1), y0)
        )
        a2 = _polygon_area(motion)
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
        return endo + _normals(endo, centre, closed=closed) * thick[:, None]


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


def _long_axis_lv(
    length: float,
    width: float,
    annulus: float,
    truth: StudyTruth,
    names: tuple[tuple[str, ...], tuple[str, ...]],
    n: int = 30,
) -> tuple[_Ventricle, FloatArray]:
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
    weights = _smooth_open(weights, 6)
    motion *= weights[:, None]
    wall = truth.wall_cm * (1.0 - 0.3 * np.clip((z - 0.75) / 0.25, 0.0, 1.0))
    return _Ventricle(ed, motion, weights, truth.lvef, wall), z


def _jitter(rng: np.random.Generator, spread: float) -> float:
    """A factor near 1 for anatomical variation between patients and clips."""
    return float(rng.normal(1.0, spread))


def _grade_scale(grade: int, step: float = 0.16) -> float:
    return 1.0 + step * max(grade, 0)


# --------------------------------------------------------------------------------------------------
# four-chamber family: A4C, A2C, A5C, Apical_Doppler, Subcostal


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
        w = truth.lvedd_cm * _jitter(rng, 0.03)
        self.length = float(np.clip(1.72 * w * _jitter(rng, 0.04) - 0.5 * max(w - 5.6, 0.0), 6.8, 11.5))
        self.width = w
        self.annulus = float(np.clip(0.6 * w, 2.6, 3.9))
        self.lv, self.z = _long_axis_lv(self.length, w, self.annulus, truth, wall_names)
        self.n_side = (len(self.z) + 1) // 2
        self.effusion = _EFFUSION_CM[min(max(truth.effusion, 0), 3)]
        self.rv_width = (2.9 + 0.75 * truth.rv_dilation) * _jitter(rng, 0.05)
        self.rv_apex_z = 0.66 + 0.08 * truth.rv_dilation
        self.rv_motion = 0.35 if truth.rv_dysfunction else 1.0
        self.la_w = 3.5 * _grade_scale(truth.la_dilation) * _jitter(rng, 0.05)
        self.la_h = 4.4 * _grade_scale(truth.la_dilation) * _jitter(rng, 0.05)
        self.ra_w = 3.3 * _grade_scale(truth.ra_dilation) * _jitter(rng, 0.05)
        self.ra_h = 4.1 * _grade_scale(truth.ra_dilation) * _jitter(rng, 0.05)
        self.rv_wall = 0.42 if truth.rv_dilation < 2 else 0.5
        self.ias_x = -0.5 * self.annulus - 0.45 * truth.wall_cm
        self.ao_w = float(np.clip(2.0 + 0.1 * (w - 4.8), 1.8, 2.4))
        self.ivc = (2.4 if truth.ivc_dilated else 1.6) * _jitter(rng, 0.05)
        self.ivc_collapse = 0.55 if truth.ivc_collapse else 0.12
        self.la_bottom = self.length + self.la_h
        if subcostal:  # mitral annulus a little left of the centre line, deep under the liver
            b = Placement(placement.angle, 0.0, 0.0)(_pts((0.0, self.length)))[0]
            self.place = Placement(
                placement.angle, -1.2 - b[0] + float(rng.normal(0, 0.3)), 13.2 - b[1] + float(rng.normal(0, 0.3))
            )
            self.background = self._background()
            self.depth_cm = _depth_for(self.scene(cardiac_state(0.0, truth.heart_rate)), rng, 2.5, 18.0, 22.0)
        else:
            self.depth_cm = _depth_for(self.scene(cardiac_state(0.0, truth.heart_rate)), rng, 1.6, 14.0, 20.0)
        self.doppler_roi = self._roi() if doppler else None
        if not subcostal:
            self.background = []

    def _roi(self) -> FloatArray:
        ll = self.length
        if self.right_heart:
            xs = (-0.5 * self.annulus - self.rv_width - 1.2, 0.5 * self.annulus + 0.9)
        else:
            xs = (-0.5 * self.annulus - 1.0, 0.5 * self.annulus + 1.0)
        return self.place(_pts((xs[0], ll - 3.2), (xs[1], ll - 3.2), (xs[1], ll + 3.8), (xs[0], ll + 3.8)))

    def _background(self) -> list[Shape]:
        if not self.subcostal:
            return []
        # liver in the near field with hepatic veins, bounded below by the diaphragm
        shapes: list[Shape] = []
        # model frame: the liver lies beyond the RV free wall (x < edge), which placement turns towards the probe
        edge = -(0.5 * self.annulus + self.truth.wall_cm + self.rv_width + 0.9 + self.effusion)
        y = np.linspace(-9.0, self.length + 11.0, 14)
        border = np.stack([edge - 0.018 * (y - 0.45 * self.length) ** 2, y], axis=1)
        liver = np.vstack([border, _pts((-30.0, y[-1]), (-30.0, y[0]))])
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
        up = _unit(endo[n - 1] - base_c)  # towards the apex
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
        sc.stroke(myo, 2 * (eff + _PERICARDIUM_CM), PERICARDIUM, closed=True)
        for outline, wall, e in chambers:
            if wall >= 0.3:  # atria: no bright rim of their own
                sc.stroke(outline, 2 * (wall + e + _PERICARDIUM_CM), PERICARDIUM, closed=True)
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
                    _pts(
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
        aml = _leaflet(mv_h, coapt, up - 0.45 * lateral, 0.62 * self.annulus + 0.6, mo)
        pml = _leaflet(h_lat, coapt, up + 0.5 * lateral, 0.42 * self.annulus, mo)
        sc.stroke(aml, 0.2, VALVE)
        sc.stroke(pml, 0.2, VALVE)
        if tv is not None:
            t_s, t_l = tv
            tcoapt = 0.5 * (t_s + t_l) + up * 0.3
            to = state.tricuspid_open
            sc.stroke(_leaflet(t_s, tcoapt, up + 0.35 * lateral, 1.4, to), 0.18, VALVE)
            sc.stroke(_leaflet(t_l, tcoapt, up - 0.4 * lateral, 1.9, to), 0.18, VALVE)
        if aorta is not None:
            self._aortic_cusps(sc, h_sept, la_hinge_sept, up, state)

        if self.subcostal and ra is not None:
            self._ivc(sc, ra, state)
        if self.doppler:
            self._flows(sc, state, endo, h_sept, h_lat, up, lateral, coapt, tv, la, ra)
        return sc.placed(self.place)

    def _aorta(self, h_sept: FloatArray, amc: FloatArray, up: FloatArray, lateral: FloatArray) -> FloatArray:
        d = _unit(-up - 0.25 * lateral)
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
        opening = state.aortic_open * (1.0 - 0.27 * t.aortic_stenosis)
        width = 0.14 + (0.1 if t.av_thickened else 0.0) + 0.05 * t.aortic_stenosis
        level = THICK_VALVE if t.av_thickened else VALVE
        for hinge in (h_a, h_b):
            inward = _unit(centre - hinge)
            open_tip = hinge + 1.2 * _unit(axis + 0.08 * inward)
            tip = (1 - opening) * centre + opening * open_tip
            sc.stroke(np.vstack([hinge, 0.5 * (hinge + tip) + 0.1 * axis, tip]), width, level)

    def _ivc(self, sc: Scene, ra: FloatArray, state: CardiacState) -> None:
        """Inferior vena cava entering the RA from the liver side; its diameter collapses on inspiration."""
        bottom = ra[int(np.argmax(ra[:, 1] - 0.3 * ra[:, 0]))]
        diam = self.ivc * (1.0 - self.ivc_collapse * state.respiration) * (1.0 + 0.04 * state.systole)
        d = _unit(np.array([-0.35, 1.0]))
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


# --------------------------------------------------------------------------------------------------
# long-axis family: PLAX, Doppler PLAX, A3C


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
        w = truth.lvedd_cm * _jitter(rng, 0.03)
        self.width = w
        self.length = float(np.clip(1.72 * w * _jitter(rng, 0.04) - 0.5 * max(w - 5.6, 0.0), 6.8, 11.5))
        self.annulus = (0.8 if apical else 0.9) * w
        names = (("anteroseptal", "septal", "septum"), ("posterior", "inferolateral"))
        lv, z = _long_axis_lv(self.length, w, self.annulus, truth, names)
        # model frame: rotate so the apex is on the left and the septum (side -1) on top
        rot = Placement(90.0, 0.0, 0.0)  # (x, y) -> (-y, x): base (0, L) -> (-L, 0)
        flip = np.array([-1.0, 1.0])
        lv.ed = rot(lv.ed) * flip
        lv.motion = rot(lv.motion) * flip
        self.lv, self.z = lv, z
        self.n_side = (len(z) + 1) // 2
        self.effusion = _EFFUSION_CM[min(max(truth.effusion, 0), 3)]
        self.ao_w = float(np.clip(2.0 + 0.1 * (w - 4.8), 1.8, 2.4))
        self.ao_dir = _rot(np.array([1.0, 0.0]), -float(rng.normal(5.0, 3.0)))
        self.la_d = (3.3 + 0.62 * truth.la_dilation) * _jitter(rng, 0.05)
        self.la_len = (4.3 + 0.45 * truth.la_dilation) * _jitter(rng, 0.05)
        self.rv_d = (2.1 + 0.6 * truth.rv_dilation) * _jitter(rng, 0.06)
        self.rv_wall = 0.42
        tilt = -float(rng.normal(5.0, 2.5))
        if apical:
            base = Placement(90.0 + float(rng.normal(0.0, 3.0)), 0.0, 0.0)
            apex = base(_pts((0.0, 0.0)))[0]
            self.place = Placement(
                base.angle, 0.25 - apex[0] + float(rng.normal(0, 0.2)), 2.7 - apex[1] + float(rng.normal(0, 0.15))
            )
        else:
            base = Placement(tilt, 0.0, 0.0)
            top = base(_pts((0.55 * self.length, -0.5 * w - truth.wall_cm - self.rv_d - self.rv_wall)))[0]
            b = base(_pts((self.length, 0.0)))[0]
            self.place = Placement(
                tilt, 1.9 - b[0] + float(rng.normal(0, 0.25)), 2.2 - top[1] + float(rng.normal(0, 0.15))
            )
        self.doppler_roi = self._roi() if doppler else None
        self.background: list[Shape] = []
        self.depth_cm = _depth_for(
            self.scene(cardiac_state(0.0, truth.heart_rate)), rng, 1.2 if apical else 4.0, 14.0, 20.0
        )

    def _roi(self) -> FloatArray:
        ll, a = self.length, self.annulus
        return self.place(
            _pts(
                (ll - 3.2, -0.5 * a - 0.6),
                (ll + 3.0, -0.5 * a - 1.0),
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
            lower_border = np.stack([_smooth_open(lower_border[:, 0], 4), _smooth_open(lower_border[:, 1], 4)], axis=1)
            normals = _normals(lower_border, lower_border.mean(axis=0), closed=False)
            normals[normals[:, 1] > 0] *= -1.0  # away from the LV: towards the chest wall
            frac = np.linspace(0.0, 1.0, len(lower_border))
            taper = 1.0 - 0.75 * np.clip((frac - 0.55) / 0.45, 0.0, 1.0) ** 1.5
            depth = self.rv_d * taper * (1.0 - 0.12 * state.contraction)
            upper_border = lower_border + normals * depth[:, None]
            rv = np.vstack([lower_border, upper_border[::-1]])
            rv = spline(rv[::2], 3, closed=True)
            chambers.append((rv, self.rv_wall, self.effusion))

        eff = self.effusion
        sc.stroke(myo, 2 * (eff + _PERICARDIUM_CM), PERICARDIUM, closed=True)
        for outline, wall, e in chambers:
            if wall >= 0.3:  # atria: no bright rim of their own
                sc.stroke(outline, 2 * (wall + e + _PERICARDIUM_CM), PERICARDIUM, closed=True)
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
        sc.stroke(_leaflet(amc, coapt, into_lv + np.array([0.0, -0.55]), 0.55 * self.width, mo), 0.2, VALVE)
        sc.stroke(_leaflet(h_post, coapt, into_lv + np.array([0.0, 0.6]), 0.32 * self.width, mo), 0.2, VALVE)
        # aortic valve: right coronary (anterior) and non-coronary (posterior) cusps
        opening = state.aortic_open * (1.0 - 0.27 * t.aortic_stenosis)
        width = 0.14 + (0.1 if t.av_thickened else 0.0) + 0.05 * t.aortic_stenosis
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
                jet = plume(
                    0.5 * (upper[3] + lower[3]), d, 1.5 + 1.2 * t.aortic_stenosis, 0.5 + 0.3 * t.aortic_stenosis
                )
                sc.flows.append(Flow(jet, (float(d[0]), float(d[1])), 3.0, True))
        if state.systole > 0.05 and t.mr > 0:
            target = la.mean(axis=0) + 0.4 * d
            ln = (0.0, 0.38, 0.66, 0.9)[t.mr] * self.la_len * (0.55 + 0.45 * state.systole)
            wd = (0.0, 0.38, 0.62, 0.88)[t.mr] * self.la_d * (0.6 + 0.4 * state.systole)
            o = coapt + np.array([0.25, 0.0])
            sc.flows.append(Flow(plume(o, target - o, ln, wd), (float(d[0]), float(-d[1])), 4.0, True))
        if state.diastole > 0.05 and t.ar > 0:
            o = 0.5 * (upper[3] + lower[3])
            ln = (0.0, 1.6, 3.0, 4.4)[t.ar] * (0.6 + 0.4 * state.diastole)
            wd = (0.0, 0.55, 1.0, 1.5)[t.ar]
            sc.flows.append(Flow(plume(o, np.array([-1.0, 0.12]), ln, wd), (-1.0, 0.1), 4.0, True))


# --------------------------------------------------------------------------------------------------
# parasternal short axis, mid-ventricular


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
        r = 0.5 * truth.lvedd_cm * _jitter(rng, 0.03)
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
        weights = _smooth_closed(weights, 8)
        motion = -ed * weights[:, None]
        self.lv = _Ventricle(ed, motion, weights, truth.lvef, np.full(n, truth.wall_cm))
        self.theta = theta
        self.r = r
        self.effusion = _EFFUSION_CM[min(max(truth.effusion, 0), 3)]
        self.rv_d = (1.5 + 0.55 * truth.rv_dilation) * _jitter(rng, 0.07)
        self.rv_wall = 0.42
        self.pm_r = (0.5 + 0.1 * max(truth.wall_cm - 1.0, 0.0)) * _jitter(rng, 0.05)
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
        sc.stroke(epi, 2 * (eff + _PERICARDIUM_CM), PERICARDIUM, closed=True)
        sc.stroke(rv, 2 * (self.rv_wall + eff + _PERICARDIUM_CM), PERICARDIUM, closed=True)
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
        self.ao_r = 0.5 * float(np.clip(2.4 + 0.1 * (truth.lvedd_cm - 4.8), 2.1, 2.9)) * _jitter(rng, 0.04)
        self.la_d = (3.2 + 0.6 * truth.la_dilation) * _jitter(rng, 0.05)
        self.la_w = (4.0 + 0.5 * truth.la_dilation) * _jitter(rng, 0.05)
        self.ra_s = (3.1 + 0.5 * truth.ra_dilation) * _jitter(rng, 0.05)
        self.rvot = (1.7 + 0.35 * truth.rv_dilation) * _jitter(rng, 0.06)
        self.effusion = _EFFUSION_CM[min(max(truth.effusion, 0), 3)]
        cy = 1.55 + 0.45 + self.rvot + 0.55 + self.ao_r + 0.3
        self.place = Placement(float(rng.normal(0.0, 4.0)), float(rng.normal(0.2, 0.3)), cy + float(rng.normal(0, 0.2)))
        self.depth_cm = float(np.clip(cy + self.ao_r + self.la_d + 3.0 + rng.normal(0.8, 0.4), 12.0, 18.0))
        r = self.ao_r
        self.doppler_roi = (
            self.place(_pts((-r - 4.2, -r - 1.2), (r + 1.4, -r - 1.2), (r + 1.4, r + 1.6), (-r - 4.2, r + 2.2)))
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
        pa_dir = _unit(np.array([0.45, 1.0]))
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
            sc.stroke(outline, 2 * (0.3 + 0.5 * eff + _PERICARDIUM_CM), PERICARDIUM, closed=True)
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
        sc.stroke(_leaflet(tv_a, tv_c, np.array([0.4, -1.0]), 1.3, to), 0.18, VALVE)
        sc.stroke(_leaflet(tv_b, tv_c, np.array([0.1, -1.0]), 1.6, to), 0.18, VALVE)
        # pulmonary valve cusps
        po = state.aortic_open
        for sgn in (1.0, -1.0):
            hinge = pv + sgn * pn * pa_half
            tip = (1 - po) * pv + po * (hinge + pa_dir * 1.0)
            sc.stroke(np.vstack([hinge, tip]), 0.14, VALVE)
        # aortic valve: three cusps; closed = "Mercedes" Y, open = triangular orifice
        opening = state.aortic_open * 0.78 * (1.0 - 0.25 * t.aortic_stenosis)
        thick = 0.14 + (0.12 if t.av_thickened else 0.0) + 0.05 * t.aortic_stenosis
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
        if state.diastole > 0.05 and t.ar > 0:
            rad = (0.0, 0.28, 0.5, 0.8)[t.ar] * r * (0.7 + 0.3 * state.diastole)
            sc.flows.append(Flow(ellipse(0.0, 0.0, rad, rad, 0.0, 16), (0.0, 1.0), 4.0, True))


# --------------------------------------------------------------------------------------------------
# suprasternal notch


class Suprasternal:
    """SSN long axis of the aortic arch: distal ascending aorta (left), arch with the brachiocephalic, left
    carotid and left subclavian arteries rising towards the probe, descending aorta (right), right pulmonary
    artery in cross-section under the arch, left brachiocephalic vein crossing above it."""

    def __init__(self, truth: StudyTruth, rng: np.random.Generator) -> None:
        self.truth = truth
        top = float(rng.normal(4.6, 0.3))
        sx, sy = float(rng.normal(0.85, 0.05)), float(rng.normal(0.95, 0.05))
        ctrl = _pts(
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
        nrm = _normals(centre, mid, closed=False)
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
            axis = _unit(tip - base)
            perp = np.array([-axis[1], axis[0]])
            branch = np.vstack([base - perp * rad, tip - perp * rad * 0.9, tip + perp * rad * 0.9, base + perp * rad])
            sc.stroke(branch, 0.35, VESSEL_WALL, closed=True)
            sc.fill(branch, BLOOD)
        sc.stroke(tube, 0.55, VESSEL_WALL, closed=True)
        sc.fill(tube, BLOOD)
        sc.fill(rpa, BLOOD)
        sc.fill(la, BLOOD)
        return sc.placed(self.place)


# --------------------------------------------------------------------------------------------------


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
