"""The imaging sector of one clip and the pixel primitives the renderer shares: the fan and its
cm -> pixel mapping, painting a scene's shapes as dB, float32 conversion and smooth random fields."""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

from rag.simulate.anatomy import FloatArray, Scene

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]


SCALE = 0.5  # anatomy is painted at half resolution, speckle at full resolution


class Sector:
    """The fan, its pixel grids and the cm -> pixel mapping of one clip."""

    def __init__(self, height: int, width: int, depth_cm: float, rng: np.random.Generator) -> None:
        self.h, self.w = height, width
        self.half_angle = math.radians(float(rng.uniform(37.5, 45.0)))
        self.cx = (width - 1) / 2.0
        self.cy = float(max(round(0.085 * height), 8))  # a band for labels above the sector
        self.strip = max(round(0.105 * height), 14)
        radius = height - self.strip - self.cy - 3.0
        self.radius = float(min(radius, (width / 2.0 - 8.0) / math.sin(self.half_angle)))
        self.depth_cm = depth_cm
        self.ppc = self.radius / depth_cm  # full-resolution pixels per cm
        self.probe_angle = math.radians(float(np.clip(rng.normal(0.0, 1.5), -4.0, 4.0)))
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        dx, dy = xx - np.float32(self.cx), yy - np.float32(self.cy)
        self.r = np.hypot(dx, dy).astype(np.float32)
        self.theta = np.arctan2(dx, dy).astype(np.float32)
        self.mask = (self.r <= self.radius) & (np.abs(self.theta) <= self.half_angle) & (dy >= 0)
        ys, xs = np.nonzero(self.mask)
        self.box = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
        # half-resolution grids
        self.h2, self.w2 = (height + 1) // 2, (width + 1) // 2
        y2, x2 = np.mgrid[0 : self.h2, 0 : self.w2].astype(np.float32)
        fx, fy = 2.0 * x2 + 0.5 - np.float32(self.cx), 2.0 * y2 + 0.5 - np.float32(self.cy)
        r2 = np.maximum(np.hypot(fx, fy), 1e-3)
        self.ux2, self.uy2 = (fx / r2).astype(np.float32), (fy / r2).astype(np.float32)
        self.depth2 = (r2 / self.ppc).astype(np.float32)  # cm
        self.theta2 = np.arctan2(fx, fy).astype(np.float32)

    def to_full(self, pts: FloatArray) -> FloatArray:
        """cm (view frame) -> full-resolution pixel coordinates, with the probe-angle rotation."""
        c, s = math.cos(self.probe_angle), math.sin(self.probe_angle)
        x = pts[:, 0] * c - pts[:, 1] * s
        y = pts[:, 0] * s + pts[:, 1] * c
        return np.stack([self.cx + self.ppc * x, self.cy + self.ppc * y], axis=1)

    def to_half(self, pts: FloatArray) -> FloatArray:
        return (self.to_full(pts) - 0.5) * 0.5

    def direction(self, d: tuple[float, float]) -> tuple[float, float]:
        c, s = math.cos(self.probe_angle), math.sin(self.probe_angle)
        return d[0] * c - d[1] * s, d[0] * s + d[1] * c


def fixed(pts: FloatArray) -> npt.NDArray[np.int32]:
    """Pixel coordinates as the 4-bit fixed point cv2 drawing functions take with ``shift=4``."""
    return np.round(pts * 16.0).astype(np.int32).reshape(-1, 1, 2)


def paint(canvas: F32, scene: Scene, sector: Sector) -> None:
    """Paint the scene's shapes (dB) into a half-resolution canvas, in order."""
    ppc2 = sector.ppc * SCALE
    for shape in scene.shapes:
        pts = fixed(sector.to_half(shape.points))
        if shape.width <= 0:
            cv2.fillPoly(canvas, [pts], (float(shape.level),), lineType=cv2.LINE_8, shift=4)
        else:
            thick = max(round(shape.width * ppc2), 1)
            cv2.polylines(
                canvas, [pts], shape.closed, (float(shape.level),), thickness=thick, lineType=cv2.LINE_8, shift=4
            )


def f32(a: object) -> F32:
    """An OpenCV result as a float32 array (no copy when it already is one)."""
    return np.asarray(a, dtype=np.float32)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> F32:
    """(shape) float32 zero-mean unit-variance Gaussian random field with correlation length ``sigma`` px."""
    small = (max(int(shape[0] / sigma * 2) + 2, 3), max(int(shape[1] / sigma * 2) + 2, 3))
    noise = f32(cv2.GaussianBlur(rng.standard_normal(small).astype(np.float32), (0, 0), 1.0))
    field = f32(cv2.resize(noise, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC))
    field -= field.mean()
    field /= max(float(field.std()), 1e-6)
    return field
