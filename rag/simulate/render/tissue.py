"""B-mode tissue appearance: scan-converted speckle that decorrelates over time, speckle that moves
with the LV walls, the static background, noise floor and gain maps, and the grey map."""

from __future__ import annotations

import math

import cv2
import numpy as np

from rag.simulate.anatomy import TISSUE, Scene, ViewModel, cardiac_state, systole_seconds
from rag.simulate.render.sector import F32, U8, Sector, f32, paint, smooth_noise


class Speckle:
    """Complex Gaussian speckle fields generated in beam space (axial x lateral) and scan-converted;
    each frame mixes two of them with a slowly rotating phase, so the texture decorrelates smoothly."""

    def __init__(self, sector: Sector, rng: np.random.Generator, n_fields: int = 4) -> None:
        n_r = int(sector.radius * 0.5) + 4  # axial samples
        n_lines = int(np.clip(sector.half_angle * 2 * sector.radius * 0.24, 48, 192))  # scan lines
        map_r = (sector.r / (sector.radius + 1.0) * (n_r - 1)).astype(np.float32)
        map_t = ((sector.theta + sector.half_angle) / (2 * sector.half_angle) * (n_lines - 1)).astype(np.float32)
        self.fields: list[tuple[F32, F32]] = []
        for _ in range(n_fields):
            parts: list[F32] = []
            for _ in range(2):
                beam = rng.standard_normal((n_r, n_lines)).astype(np.float32)
                beam = f32(cv2.GaussianBlur(beam, (0, 0), sigmaX=1.0, sigmaY=0.6))
                beam /= max(float(beam.std()), 1e-6)
                parts.append(f32(cv2.remap(beam, map_t, map_r, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)))
            self.fields.append((parts[0], parts[1]))
        # normalise the mean power (interpolation lowers the variance where lines are sparse)
        power = np.zeros_like(self.fields[0][0])
        for re, im in self.fields:
            power += (re * re + im * im) / n_fields
        norm = f32(1.0 / np.sqrt(np.maximum(f32(cv2.GaussianBlur(power, (0, 0), 6.0)), 1e-3)))
        self.fields = [(re * norm, im * norm) for re, im in self.fields]
        self._re = np.empty_like(self.fields[0][0])
        self._im = np.empty_like(self.fields[0][0])
        self._mag = np.empty_like(self.fields[0][0])

    def log_amplitude(self, angle: float) -> F32:
        """ln |speckle| for mixing angle ``angle`` (rad), full resolution float32."""
        k = len(self.fields)
        j = int(angle // (math.pi / 2))
        phi = angle - j * math.pi / 2
        a, b = self.fields[j % k], self.fields[(j + 1) % k]
        c, s = math.cos(phi), math.sin(phi)
        cv2.addWeighted(a[0], c, b[0], s, 0.0, dst=self._re)
        cv2.addWeighted(a[1], c, b[1], s, 0.0, dst=self._im)
        cv2.magnitude(self._re, self._im, magnitude=self._mag)
        # a floor under the amplitude keeps speckle nulls from turning into black cracks after log compression
        np.add(self._mag, np.float32(0.3), out=self._mag)
        return f32(cv2.log(self._mag))


class TissueMotion:
    """Speckle that moves with the myocardium: a smooth end-systolic displacement field (pixels) around the
    LV, interpolated from the LV outline's motion; each frame samples the speckle at ``x - c(t) * d(x)``."""

    def __init__(self, model: ViewModel, sector: Sector, heart_rate: float) -> None:
        ed = model.scene(cardiac_state(0.0, heart_rate)).lv_cavity
        es = model.scene(cardiac_state(systole_seconds(heart_rate), heart_rate)).lv_cavity
        self.active = ed is not None and es is not None
        h, w = sector.h, sector.w
        self.grid_x, self.grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        self.dx = np.zeros((h, w), dtype=np.float32)
        self.dy = np.zeros((h, w), dtype=np.float32)
        if ed is None or es is None:
            return
        p_ed, p_es = sector.to_full(ed), sector.to_full(es)
        disp = p_es - p_ed
        centre = p_ed.mean(axis=0)
        # the wall moves with its endocardium, less so towards the epicardium
        pts = np.vstack([p_ed, centre + (p_ed - centre) * 1.2, centre + (p_ed - centre) * 1.4])
        vec = np.vstack([disp, disp * 0.8, disp * 0.5])
        q = 4  # accumulate at quarter resolution
        hq, wq = (h + q - 1) // q, (w + q - 1) // q
        ix = np.clip((pts[:, 0] / q).astype(int), 0, wq - 1)
        iy = np.clip((pts[:, 1] / q).astype(int), 0, hq - 1)
        acc = np.zeros((3, hq, wq), dtype=np.float32)
        np.add.at(acc[0], (iy, ix), 1.0)
        np.add.at(acc[1], (iy, ix), vec[:, 0])
        np.add.at(acc[2], (iy, ix), vec[:, 1])
        sigma = max(0.5 * sector.ppc / q, 1.0)
        blurred = [cv2.GaussianBlur(a, (0, 0), sigma) for a in acc]
        weight = blurred[0]
        fade = weight / (weight + 0.02 * float(weight.max()))
        for out, comp in ((self.dx, blurred[1]), (self.dy, blurred[2])):
            field = comp / np.maximum(weight, 1e-6) * fade
            out[:] = cv2.resize(field.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        self._mx = np.empty((h, w), dtype=np.float32)
        self._my = np.empty((h, w), dtype=np.float32)

    def warp(self, image: F32, contraction: float) -> F32:
        if not self.active or contraction <= 0.0:
            return image
        cv2.scaleAdd(self.dx, -contraction, self.grid_x, dst=self._mx)
        cv2.scaleAdd(self.dy, -contraction, self.grid_y, dst=self._my)
        return f32(cv2.remap(image, self._mx, self._my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))


def static_maps(sector: Sector, model: ViewModel, rng: np.random.Generator) -> tuple[F32, F32, F32]:
    """(background dB, noise/clutter floor dB) at half resolution and the full-resolution gain map (dB,
    -1000 outside the sector: depth attenuation with imperfect TGC, lateral fall-off)."""
    d2 = sector.depth2
    bg = np.full((sector.h2, sector.w2), TISSUE, dtype=np.float32)
    bg += smooth_noise(rng, bg.shape, 10.0) * 5.0 + smooth_noise(rng, bg.shape, 3.0) * 2.0
    # chest wall: skin, fat and muscle layers in the near field
    cw = float(rng.uniform(1.0, 1.6))
    layers = -15.0 + 5.0 * np.cos(d2 / cw * 7.0 + float(rng.uniform(0, 6))) + smooth_noise(rng, bg.shape, 4.0) * 2.0
    bg = np.where(d2 < cw, np.maximum(bg, layers), bg).astype(np.float32)
    # lung beside the heart in parasternal and apical windows: darker, hazy
    lung = np.abs(sector.theta2) > sector.half_angle * float(rng.uniform(0.72, 0.9))
    bg = np.where(lung & (d2 > 2.5), bg - 7.0, bg).astype(np.float32)
    if model.background:
        scene = Scene(shapes=list(model.background))
        paint(bg, scene, sector)
    # floor: electronic noise (amplified with depth by the TGC) and reverberation clutter near the probe
    floor = -60.0 + 0.6 * d2
    clutter_depth = float(rng.uniform(1.8, 3.2))
    clutter = -20.0 - 26.0 * (d2 / clutter_depth) + 4.0 * smooth_noise(rng, bg.shape, 5.0)
    floor = np.maximum(floor, clutter).astype(np.float32)
    # gain: imperfect TGC over depth, weaker towards the sector edges
    r_cm = sector.r / sector.ppc
    tgc = np.zeros_like(r_cm)
    for _ in range(3):
        tgc += float(rng.normal(0, 1.2)) * np.sin(
            r_cm / sector.depth_cm * math.pi * float(rng.uniform(0.6, 2.5)) + float(rng.uniform(0, 6))
        )
    tgc += (
        float(rng.normal(0.0, 2.5)) * (r_cm / sector.depth_cm) - 3.0 * np.clip(r_cm / sector.depth_cm - 0.8, 0, 1) / 0.2
    )
    edge = np.abs(sector.theta) / sector.half_angle
    gain = tgc - 4.0 * edge**4
    gain = np.where(sector.mask, gain, -1000.0).astype(np.float32)
    return bg, floor, gain


def grey_map(rng: np.random.Generator, grayscale: bool) -> U8:
    """(256, 1, 3) or (256,) lookup table from compressed dB to display values (gamma and tint)."""
    x = np.linspace(0.0, 1.0, 256)
    gamma = float(rng.uniform(1.05, 1.45))
    y = np.power(x, gamma)
    y = np.clip(y * 255.0, 0, 255)
    if grayscale:
        return y.astype(np.uint8)
    tint = [(1.0, 1.0, 1.0), (1.0, 1.0, 1.0), (1.0, 0.95, 0.84), (0.9, 0.97, 1.0)][int(rng.integers(0, 4))]
    return np.stack([np.clip(y * t, 0, 255) for t in tint], axis=1).astype(np.uint8).reshape(256, 1, 3)
