"""Plane-geometry helpers of the view models, in cm: splines, ellipses, unit vectors and rotations,
regurgitant-jet plumes and flow ovals, outline normals and areas, smoothing, valve leaflets."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def points(*xy: tuple[float, float]) -> FloatArray:
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


def unit(v: FloatArray | tuple[float, float]) -> FloatArray:
    a = np.asarray(v, dtype=np.float64)
    return a / max(float(np.hypot(a[0], a[1])), 1e-9)


def rotate(v: FloatArray, degrees: float) -> FloatArray:
    a = math.radians(degrees)
    return np.array([math.cos(a) * v[0] - math.sin(a) * v[1], math.sin(a) * v[0] + math.cos(a) * v[1]])


def plume(
    origin: FloatArray, direction: FloatArray, length: float, width: float, n: int = 14, neck: float = 0.3
) -> FloatArray:
    """(2n, 2) outline of a regurgitant jet: a vena contracta ``neck`` cm wide widening into a rounded flame."""
    d = unit(direction)
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


def outward_normals(curve: FloatArray, centre: FloatArray, *, closed: bool) -> FloatArray:
    """Unit normals of a polyline (N, 2), oriented away from ``centre``."""
    tangent = np.roll(curve, -1, axis=0) - np.roll(curve, 1, axis=0) if closed else np.gradient(curve, axis=0)
    n = np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)
    n /= np.maximum(np.hypot(n[:, 0], n[:, 1]), 1e-9)[:, None]
    flip = np.sum(n * (curve - centre[None, :]), axis=1) < 0
    n[flip] *= -1
    return n


def polygon_area(p: FloatArray) -> float:
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def smooth_closed(values: FloatArray, passes: int = 3) -> FloatArray:
    v = values.copy()
    for _ in range(passes):
        v = 0.25 * np.roll(v, 1) + 0.5 * v + 0.25 * np.roll(v, -1)
    return v


def smooth_open(values: FloatArray, passes: int = 3) -> FloatArray:
    v = values.copy()
    for _ in range(passes):
        inner = 0.25 * v[:-2] + 0.5 * v[1:-1] + 0.25 * v[2:]
        v = np.concatenate([v[:1], inner, v[-1:]])
    return v


def leaflet(
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
