"""Colour Doppler: the colour-flow palette, the colour box over the valves with its per-frame velocity
map (aliasing, turbulent mosaic) and the box outline."""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

from rag.simulate.anatomy import FloatArray, Scene
from rag.simulate.render.sector import F32, U8, Sector, fixed, smooth_noise


def colour_palette() -> U8:
    """(4, 64, 3) RGB colour-flow map: velocity bins -Nyquist..+Nyquist, four turbulence (variance) levels."""
    v = np.linspace(-1.0, 1.0, 64)
    pal = np.zeros((4, 64, 3), dtype=np.float64)
    pos, neg = np.clip(v, 0, 1), np.clip(-v, 0, 1)
    for k in range(4):
        r = np.where(v > 0, 70 + 185 * np.minimum(pos / 0.55, 1.0), 70 * np.clip((neg - 0.7) / 0.3, 0, 1))
        g = np.where(v > 0, 235 * np.clip((pos - 0.5) / 0.5, 0, 1), 225 * np.clip((neg - 0.5) / 0.5, 0, 1))
        b = np.where(v > 0, 50 * np.clip((pos - 0.85) / 0.15, 0, 1), 80 + 175 * np.minimum(neg / 0.55, 1.0))
        g = g + 70 * k
        pal[k] = np.stack([r, g, b], axis=1)
    return np.clip(pal, 0, 255).astype(np.uint8)


class ColourBox:
    """The colour-flow region (an annular sector around the valves) and its per-frame rendering."""

    def __init__(self, sector: Sector, roi: FloatArray, rng: np.random.Generator) -> None:
        px = sector.to_full(roi)
        dx, dy = px[:, 0] - sector.cx, px[:, 1] - sector.cy
        th = np.arctan2(dx, dy)
        rr = np.hypot(dx, dy)
        lim = sector.half_angle - math.radians(2.0)
        self.t0 = float(np.clip(th.min() - 0.03, -lim, lim))
        self.t1 = float(np.clip(th.max() + 0.03, -lim, lim))
        self.r0 = float(np.clip(rr.min() - 4, 0.12 * sector.radius, 0.9 * sector.radius))
        self.r1 = float(np.clip(rr.max() + 4, self.r0 + 20, 0.99 * sector.radius))
        inside = (sector.theta >= self.t0) & (sector.theta <= self.t1) & (sector.r >= self.r0) & (sector.r <= self.r1)
        self.mask = inside & sector.mask
        ys, xs = np.nonzero(self.mask)
        self.slice_full = (slice(int(ys.min()), int(ys.max()) + 1), slice(int(xs.min()), int(xs.max()) + 1))
        y0, y1 = int(ys.min()) // 2, min(int(ys.max()) // 2 + 2, sector.h2)
        x0, x1 = int(xs.min()) // 2, min(int(xs.max()) // 2 + 2, sector.w2)
        self.slice_half = (slice(y0, y1), slice(x0, x1))
        self.ux = sector.ux2[self.slice_half]
        self.uy = sector.uy2[self.slice_half]
        shape = (y1 - y0, x1 - x0)
        # smooth random velocity fields for the aliasing mosaic of turbulent jets, ragged flow edges
        self.noise = [smooth_noise(rng, shape, 4.0) for _ in range(6)]
        self.ragged = [(smooth_noise(rng, shape, 1.6) * 0.22).astype(np.float32) for _ in range(4)]
        self.palette = colour_palette()
        self.nyquist_cm_s = int(rng.choice([48, 56, 61, 64, 69, 77]))
        self._tmp = np.zeros(shape, dtype=np.float32)

    def render(self, scene: Scene, sector: Sector, tissue_half: F32, frame: int) -> tuple[U8, npt.NDArray[np.bool_]]:
        """Colour (h, w, 3) uint8 and where to show it (h, w) bool, both on the half-resolution box slice."""
        shape = self._tmp.shape
        vel = np.zeros(shape, dtype=np.float32)
        power = np.zeros(shape, dtype=np.float32)
        turb = np.zeros(shape, dtype=np.float32)
        oy, ox = self.slice_half[0].start, self.slice_half[1].start
        for flow in scene.flows:
            pts = sector.to_half(flow.points) - np.array([ox, oy])
            m = self._tmp
            m[:] = 0.0
            cv2.fillPoly(m, [fixed(pts)], (1.0,), lineType=cv2.LINE_8, shift=4)
            if not m.any():
                continue
            dx, dy = sector.direction(flow.direction)
            towards = -(dx * self.ux + dy * self.uy)  # cosine of the beam-flow angle, + towards the probe
            prof = cv2.GaussianBlur(m, (0, 0), 3.5) * m  # velocity profile: fastest in the middle
            if flow.turbulent:
                vel += m * (flow.speed * towards)
                np.maximum(turb, np.minimum(prof * 1.6, 1.0), out=turb)
                np.maximum(power, m, out=power)
            else:
                vel += prof * (flow.speed * towards)
                np.maximum(power, np.minimum(prof * 2.2, 1.0), out=power)
        noise = self.noise[frame % len(self.noise)]
        vel *= 1.0 + 0.25 * self.noise[(frame + 3) % len(self.noise)] * (1.0 - turb)
        vel += turb * noise * 1.1
        wrapped = np.mod(vel + 1.0, 2.0) - 1.0
        vi = np.clip(((wrapped + 1.0) * 31.5).astype(np.int32), 0, 63)
        ti = np.clip((turb * (2.6 + noise)).astype(np.int32), 0, 3)
        rgb = self.palette[ti, vi]
        blood = tissue_half[self.slice_half] < -36.0
        show = (power + self.ragged[frame % len(self.ragged)] > 0.4) & (np.abs(wrapped) > 0.08) & blood
        return rgb, show


def outline_box(frames: U8, box: ColourBox) -> None:
    """Thin grey outline of the colour box, as colour-flow cines show it."""
    edge = box.mask.astype(np.uint8)
    edge = edge - cv2.erode(edge, np.ones((3, 3), np.uint8))
    ys, xs = np.nonzero(
        edge & ((np.arange(edge.shape[1])[None, :] // 3 + np.arange(edge.shape[0])[:, None] // 3) % 2 == 0)
    )
    frames[:, ys, xs] = 150
