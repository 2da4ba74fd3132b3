"""Pixel renderer of the simulated archive: echo cines whose findings are in the pixels.

:func:`render_clip` turns a :class:`~rag.simulate.truth.StudyTruth` and a view into a B-mode (optionally
colour-Doppler) cine: the view's anatomy (:mod:`rag.simulate.anatomy`) is painted as an echogenicity map
in dB, multiplied by spatially correlated Rayleigh speckle that is scan-converted from beam space (so
lateral resolution degrades with depth), attenuated with an imperfect time-gain compensation, log
compressed and masked to a fan-shaped sector. A burned-in ECG trace (R waves on the end-diastolic
frames), text labels, a grey bar and an orientation marker lie outside the sector, as on a real cart.

The speckle moves with the LV walls (a smooth displacement field interpolated from the LV outline) and
decorrelates slowly over time. Colour-Doppler views colour the blood inside a colour box by velocity
towards or away from the probe, with aliasing and a turbulent mosaic for regurgitant and stenotic jets.

Static geometry (sector, gain maps, speckle fields, overlay) is computed once per clip; frames are built
with vectorised OpenCV calls: 0.12-0.3 s for 48 frames of 384x512 on one core. The same generator state
gives byte-identical frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from rag.ingest.views import COARSE_VIEWS
from rag.simulate.anatomy import (
    DOPPLER_VIEWS,
    TISSUE,
    CardiacState,
    FloatArray,
    Scene,
    ViewModel,
    build_view,
    cardiac_state,
    ecg_mv,
    systole_seconds,
)
from rag.simulate.truth import StudyTruth

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

_MAX_FRAMES = 80
_SCALE = 0.5  # anatomy is painted at half resolution, speckle at full resolution
_DB_PER_LN = 20.0 / math.log(10.0)
_PROBES = ("S5-1", "M5Sc", "X5-1", "P4-2", "4V1c", "S4-2", "X7-2t")
_SITES = ("ECHO LAB 2", "CARDIOLOGY", "ADULT ECHO", "CV IMAGING", "ECHO 1", "NONINVASIVE LAB")


@dataclass(frozen=True)
class RenderedClip:
    """One rendered cine with the truth of its pixels."""

    frames: np.ndarray  # (T, H, W, 3) uint8 RGB if colour else (T, H, W) uint8, with ECG and labels burned in
    fps: float
    view: str  # one of COARSE_VIEWS
    colour: bool  # three channels (colour Doppler, or grayscale shown through a colour map)
    sector_box: tuple[int, int, int, int]  # (x0, y0, x1, y1) inclusive bounds of the imaging sector
    lv_area_px: np.ndarray  # (T,) float64 echo-free LV cavity area in pixels; nan without the LV in plane
    ed_frames: tuple[int, ...]  # indices of end-diastolic frames (R waves of the ECG)
    lv_centre: tuple[int, int] | None = None  # (x, y) pixel inside the LV cavity in every frame; None without LV


# --------------------------------------------------------------------------------------------------
# static geometry of one clip


class _Sector:
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


def _fixed(pts: FloatArray) -> npt.NDArray[np.int32]:
    """Pixel coordinates as the 4-bit fixed point cv2 drawing functions take with ``shift=4``."""
    return np.round(pts * 16.0).astype(np.int32).reshape(-1, 1, 2)


def _paint(canvas: F32, scene: Scene, sector: _Sector) -> None:
    """Paint the scene's shapes (dB) into a half-resolution canvas, in order."""
    ppc2 = sector.ppc * _SCALE
    for shape in scene.shapes:
        pts = _fixed(sector.to_half(shape.points))
        if shape.width <= 0:
            cv2.fillPoly(canvas, [pts], (float(shape.level),), lineType=cv2.LINE_8, shift=4)
        else:
            thick = max(round(shape.width * ppc2), 1)
            cv2.polylines(
                canvas, [pts], shape.closed, (float(shape.level),), thickness=thick, lineType=cv2.LINE_8, shift=4
            )


def _f32(a: object) -> F32:
    """An OpenCV result as a float32 array (no copy when it already is one)."""
    return np.asarray(a, dtype=np.float32)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> F32:
    """(shape) float32 zero-mean unit-variance Gaussian random field with correlation length ``sigma`` px."""
    small = (max(int(shape[0] / sigma * 2) + 2, 3), max(int(shape[1] / sigma * 2) + 2, 3))
    noise = _f32(cv2.GaussianBlur(rng.standard_normal(small).astype(np.float32), (0, 0), 1.0))
    field = _f32(cv2.resize(noise, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC))
    field -= field.mean()
    field /= max(float(field.std()), 1e-6)
    return field


class _Speckle:
    """Complex Gaussian speckle fields generated in beam space (axial x lateral) and scan-converted;
    each frame mixes two of them with a slowly rotating phase, so the texture decorrelates smoothly."""

    def __init__(self, sector: _Sector, rng: np.random.Generator, n_fields: int = 4) -> None:
        n_r = int(sector.radius * 0.5) + 4  # axial samples
        n_lines = int(np.clip(sector.half_angle * 2 * sector.radius * 0.24, 48, 192))  # scan lines
        map_r = (sector.r / (sector.radius + 1.0) * (n_r - 1)).astype(np.float32)
        map_t = ((sector.theta + sector.half_angle) / (2 * sector.half_angle) * (n_lines - 1)).astype(np.float32)
        self.fields: list[tuple[F32, F32]] = []
        for _ in range(n_fields):
            parts: list[F32] = []
            for _ in range(2):
                beam = rng.standard_normal((n_r, n_lines)).astype(np.float32)
                beam = _f32(cv2.GaussianBlur(beam, (0, 0), sigmaX=1.0, sigmaY=0.6))
                beam /= max(float(beam.std()), 1e-6)
                parts.append(_f32(cv2.remap(beam, map_t, map_r, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)))
            self.fields.append((parts[0], parts[1]))
        # normalise the mean power (interpolation lowers the variance where lines are sparse)
        power = np.zeros_like(self.fields[0][0])
        for re, im in self.fields:
            power += (re * re + im * im) / n_fields
        norm = _f32(1.0 / np.sqrt(np.maximum(_f32(cv2.GaussianBlur(power, (0, 0), 6.0)), 1e-3)))
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
        return _f32(cv2.log(self._mag))


class _TissueMotion:
    """Speckle that moves with the myocardium: a smooth end-systolic displacement field (pixels) around the
    LV, interpolated from the LV outline's motion; each frame samples the speckle at ``x - c(t) * d(x)``."""

    def __init__(self, model: ViewModel, sector: _Sector, heart_rate: float) -> None:
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
        return _f32(cv2.remap(image, self._mx, self._my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))


# --------------------------------------------------------------------------------------------------
# colour Doppler


def _colour_palette() -> U8:
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


class _ColourBox:
    """The colour-flow region (an annular sector around the valves) and its per-frame rendering."""

    def __init__(self, sector: _Sector, roi: FloatArray, rng: np.random.Generator) -> None:
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
        self.noise = [_smooth_noise(rng, shape, 4.0) for _ in range(6)]
        self.ragged = [(_smooth_noise(rng, shape, 1.6) * 0.22).astype(np.float32) for _ in range(4)]
        self.palette = _colour_palette()
        self.nyquist_cm_s = int(rng.choice([48, 56, 61, 64, 69, 77]))
        self._tmp = np.zeros(shape, dtype=np.float32)

    def render(self, scene: Scene, sector: _Sector, tissue_half: F32, frame: int) -> tuple[U8, npt.NDArray[np.bool_]]:
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
            cv2.fillPoly(m, [_fixed(pts)], (1.0,), lineType=cv2.LINE_8, shift=4)
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


# --------------------------------------------------------------------------------------------------
# overlay: labels, grey bar, ECG


def _text(
    img: U8, mask: npt.NDArray[np.bool_], text: str, org: tuple[int, int], scale: float, colour: tuple[int, int, int]
) -> None:
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)
    # the mask follows what was drawn (anti-aliased pixels included)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    y0, y1 = max(org[1] - th - 1, 0), min(org[1] + base + 1, img.shape[0])
    x0, x1 = max(org[0] - 1, 0), min(org[0] + tw + 1, img.shape[1])
    mask[y0:y1, x0:x1] |= img[y0:y1, x0:x1].max(axis=2) > 0


class _Overlay:
    """Everything burned in outside the sector; static parts drawn once, the ECG cursor per frame."""

    def __init__(
        self,
        sector: _Sector,
        rng: np.random.Generator,
        *,
        view: str,
        fps: float,
        heart_rate: float,
        times: FloatArray,
        rr_offset: float,
        doppler: bool,
        nyquist: int | None,
    ) -> None:
        h, w = sector.h, sector.w
        self.img = np.zeros((h, w, 3), dtype=np.uint8)
        self.mask = np.zeros((h, w), dtype=bool)
        u = h / 384.0
        x0, y0, x1, _ = sector.box
        # labels in the band above the sector: site and probe, heart rate and view | frame rate, depth, gains
        line = max(sector.cy / 2.3, 4.0)
        scale = float(np.clip(line / 30.0, 0.18, 0.4))
        grey = (205, 205, 205)
        view_label = view.replace("_", " ") if rng.random() < 0.5 else _short_label(view)
        left = [f"{rng.choice(_SITES)}  {rng.choice(_PROBES)}", f"HR {heart_rate:.0f} bpm  {view_label}"]
        right = [f"FR {fps:.0f}Hz  {sector.depth_cm:.0f}cm"]
        if doppler:
            right.append(f"CF {rng.choice(['2.0', '2.5', '1.7'])}MHz WF {int(rng.integers(180, 420))}Hz")
        else:
            right.append(f"2D {int(rng.integers(40, 71))}%  C {int(rng.integers(45, 66))}")
        for i, text in enumerate(left):
            _text(self.img, self.mask, text, (3, round(line * (i + 1))), scale, grey)
        for i, text in enumerate(right):
            (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            _text(self.img, self.mask, text, (w - tw - 3, round(line * (i + 1))), scale, grey)
        # orientation marker beside the probe, grey bar and a small logo left of the sector
        mx, my = int(sector.cx + 0.07 * w), int(0.55 * sector.cy)
        cv2.circle(self.img, (mx, my), max(round(3 * u), 1), (90, 170, 255), -1, cv2.LINE_AA)
        self.mask[max(my - 5, 0) : my + 6, max(mx - 5, 0) : mx + 6] = True
        bar_w = max(round(5 * u), 2)
        gy0, gy1 = int(0.3 * h), int(0.52 * h)
        self.img[gy0:gy1, 3 : 3 + bar_w] = np.linspace(255, 0, gy1 - gy0).astype(np.uint8)[:, None, None]
        self.mask[gy0:gy1, 3 : 3 + bar_w] = True
        size = max(round(7 * u), 3)
        lx, ly = 3 + size, int(0.62 * h)
        pts = np.array([[lx - size, ly + size], [lx, ly - size], [lx + size, ly + size]], dtype=np.int32)
        cv2.polylines(self.img, [pts], True, (120, 200, 230), 1, cv2.LINE_AA)
        cv2.circle(self.img, (lx, ly + size // 3), max(size // 3, 1), (120, 200, 230), -1, cv2.LINE_AA)
        self.mask[ly - size - 1 : ly + size + 2, 0 : lx + size + 2] |= (
            self.img[ly - size - 1 : ly + size + 2, 0 : lx + size + 2].max(axis=2) > 0
        )
        # depth marks along the right edge, one per cm
        for k in range(1, int(sector.depth_cm) + 1):
            y = round(sector.cy + k * sector.ppc)
            if y < h - sector.strip - 2:
                mark = 2 if k % 5 == 0 else 1
                self.img[y : y + mark, w - 4 : w - 2] = 170
                self.mask[y : y + mark, w - 4 : w - 2] = True
        if doppler and nyquist is not None:
            self._colour_bar(nyquist, u, scale)
        # ECG: the whole clip's trace in the strip under the sector, R waves under the end-diastolic frames
        self.y_base = h - 4 - int(0.3 * sector.strip)
        self.amp = 0.55 * sector.strip
        self.x0, self.x1 = int(0.06 * w), int(0.94 * w)
        span = times[-1] - times[0] if len(times) > 1 else 1.0
        self.t0 = times[0] - 0.04 * span - 0.05
        self.t1 = times[-1] + 0.04 * span + 0.05
        ts = np.linspace(self.t0, self.t1, (self.x1 - self.x0) * 2)
        rr = 60.0 / heart_rate
        tau = np.mod(ts + rr_offset, rr)
        tau = np.where(tau > 0.6 * rr, tau - rr, tau)
        mv = ecg_mv(tau, heart_rate) + 0.015 * np.sin(2 * math.pi * ts * 0.3)
        xs = self.x0 + (ts - self.t0) / (self.t1 - self.t0) * (self.x1 - self.x0)
        ys = self.y_base - self.amp * mv
        self.trace = np.stack([xs, ys], axis=1)
        self.ecg_colour = (60, 230, 60) if rng.random() < 0.7 else (230, 230, 60)
        cv2.polylines(self.img, [_fixed(self.trace)], False, self.ecg_colour, 1, cv2.LINE_AA, shift=4)
        strip = slice(h - sector.strip + 1, h)
        self.mask[strip] |= self.img[strip].max(axis=2) > 0
        self.sweep = rng.random() < 0.4
        # nothing burned in may reach the sector's bounding box (the DICOM ultrasound region)
        self.mask[max(y0 - 1, 0) : sector.box[3] + 2, max(x0 - 1, 0) : x1 + 2] = False
        self.img[~self.mask] = 0

    def _colour_bar(self, nyquist: int, u: float, scale: float) -> None:
        h, w = self.img.shape[:2]
        pal = _colour_palette()[0]
        y0, y1 = int(0.3 * h), int(0.52 * h)
        x0, x1 = w - int(13 * u) - 3, w - int(7 * u) - 3
        idx = np.linspace(63, 0, y1 - y0).astype(int)
        self.img[y0:y1, x0:x1] = pal[idx][:, None, :]
        self.mask[y0:y1, x0:x1] = True
        for text, y in ((f"+{nyquist}", y0 - 3), (f"-{nyquist}", y1 + int(11 * u))):
            (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            _text(self.img, self.mask, text, (w - tw - 2, y), scale, (200, 200, 200))

    def apply(self, frames: U8, times: FloatArray, grayscale: bool) -> None:
        """Burn the overlay into ``frames`` (T, H, W) or (T, H, W, 3) in place."""
        if grayscale:
            gray = cv2.cvtColor(self.img, cv2.COLOR_RGB2GRAY)
            gray[self.mask] = np.maximum(gray[self.mask], 60)
            frames[:, self.mask] = gray[self.mask]
            ecg: tuple[int, ...] = (235,)
        else:
            frames[:, self.mask] = self.img[self.mask]
            ecg = self.ecg_colour
        h = frames.shape[1]
        top, bottom = int(self.y_base - 1.15 * self.amp), min(int(self.y_base + 0.45 * self.amp), h - 1)
        for k, t in enumerate(times):
            x = round(self.x0 + (t - self.t0) / (self.t1 - self.t0) * (self.x1 - self.x0))
            f = frames[k]
            if self.sweep:  # erase bar just ahead of the sweep
                cv2.rectangle(f, (x + 1, top), (min(x + 8, self.x1 + 2), bottom), (0,) * len(ecg), -1)
                i = int(np.clip(np.searchsorted(self.trace[:, 0], x), 0, len(self.trace) - 1))
                cv2.circle(f, (x, round(self.trace[i, 1])), 2, (255,) * len(ecg), -1)
            else:
                cv2.line(f, (x, top), (x, bottom), ecg, 1)


def _short_label(view: str) -> str:
    return {
        "Parasternal_Long": "PLAX",
        "Parasternal_Short": "PSAX",
        "Doppler_Parasternal_Long": "PLAX CFM",
        "Doppler_Parasternal_Short": "PSAX AV CFM",
        "Apical_Doppler": "AP4 CFM",
        "Subcostal": "SUBC",
    }.get(view, view)


# --------------------------------------------------------------------------------------------------
# tissue appearance


def _static_maps(sector: _Sector, model: ViewModel, rng: np.random.Generator) -> tuple[F32, F32, F32]:
    """(background dB, noise/clutter floor dB) at half resolution and the full-resolution gain map (dB,
    -1000 outside the sector: depth attenuation with imperfect TGC, lateral fall-off)."""
    d2 = sector.depth2
    bg = np.full((sector.h2, sector.w2), TISSUE, dtype=np.float32)
    bg += _smooth_noise(rng, bg.shape, 10.0) * 5.0 + _smooth_noise(rng, bg.shape, 3.0) * 2.0
    # chest wall: skin, fat and muscle layers in the near field
    cw = float(rng.uniform(1.0, 1.6))
    layers = -15.0 + 5.0 * np.cos(d2 / cw * 7.0 + float(rng.uniform(0, 6))) + _smooth_noise(rng, bg.shape, 4.0) * 2.0
    bg = np.where(d2 < cw, np.maximum(bg, layers), bg).astype(np.float32)
    # lung beside the heart in parasternal and apical windows: darker, hazy
    lung = np.abs(sector.theta2) > sector.half_angle * float(rng.uniform(0.72, 0.9))
    bg = np.where(lung & (d2 > 2.5), bg - 7.0, bg).astype(np.float32)
    if model.background:
        scene = Scene(shapes=list(model.background))
        _paint(bg, scene, sector)
    # floor: electronic noise (amplified with depth by the TGC) and reverberation clutter near the probe
    floor = -60.0 + 0.6 * d2
    clutter_depth = float(rng.uniform(1.8, 3.2))
    clutter = -20.0 - 26.0 * (d2 / clutter_depth) + 4.0 * _smooth_noise(rng, bg.shape, 5.0)
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


def _grey_map(rng: np.random.Generator, grayscale: bool) -> U8:
    """(256, 1, 3) or (256,) lookup table from compressed dB to display values (gamma and tint)."""
    x = np.linspace(0.0, 1.0, 256)
    gamma = float(rng.uniform(1.05, 1.45))
    y = np.power(x, gamma)
    y = np.clip(y * 255.0, 0, 255)
    if grayscale:
        return y.astype(np.uint8)
    tint = [(1.0, 1.0, 1.0), (1.0, 1.0, 1.0), (1.0, 0.95, 0.84), (0.9, 0.97, 1.0)][int(rng.integers(0, 4))]
    return np.stack([np.clip(y * t, 0, 255) for t in tint], axis=1).astype(np.uint8).reshape(256, 1, 3)


# --------------------------------------------------------------------------------------------------


def render_clip(
    truth: StudyTruth,
    view: str,
    *,
    rng: np.random.Generator,
    height: int = 384,
    width: int = 512,
    n_frames: int | None = None,
    fps: float | None = None,
    grayscale: bool | None = None,
) -> RenderedClip:
    """Render one cine of ``view`` for the heart described by ``truth``.

    Args:
        view: one of ``COARSE_VIEWS``; the three Doppler views are colour-flow cines.
        rng: source of all randomness (probe position, gain, speckle, labels); the same state gives
            byte-identical frames.
        n_frames: default covers 1.5-2 cardiac cycles (at most 80 frames).
        fps: default 30-60 for B-mode, 18-32 for colour Doppler.
        grayscale: B-mode as true grayscale (T, H, W); default: with probability 0.5. Colour-Doppler
            views are always (T, H, W, 3).

    Returns:
        A :class:`RenderedClip`; ``frames`` is (T, H, W) uint8 when grayscale, else (T, H, W, 3) uint8 RGB.
    """
    if view not in COARSE_VIEWS:
        raise ValueError(f"Unknown view {view!r}. Available: {list(COARSE_VIEWS)}")
    if height < 64 or width < 64:
        raise ValueError(f"height and width must be at least 64 pixels, got {height}x{width}")
    doppler = view in DOPPLER_VIEWS
    if grayscale and doppler:
        raise ValueError(
            f"{view} is a colour-Doppler view and cannot be rendered as grayscale; pass grayscale=None or False"
        )
    if grayscale is None:
        grayscale = (not doppler) and bool(rng.random() < 0.5)
    hr = float(truth.heart_rate)
    rr = 60.0 / hr
    if fps is None:
        fps = float(rng.uniform(18.0, 32.0) if doppler else rng.uniform(30.0, 60.0))
    if n_frames is None:
        n_frames = int(np.clip(round(float(rng.uniform(1.5, 2.0)) * rr * fps), 8, _MAX_FRAMES))
    if n_frames < 1:
        raise ValueError(f"n_frames must be at least 1, got {n_frames}")

    model = build_view(view, truth, rng)
    sector = _Sector(height, width, model.depth_cm, rng)
    bg, floor, gain = _static_maps(sector, model, rng)
    patchy = _smooth_noise(rng, bg.shape, 5.0) * np.float32(2.0)  # tissue echogenicity is not uniform
    speckle = _Speckle(sector, rng)
    motion = _TissueMotion(model, sector, hr)
    greys = _grey_map(rng, grayscale)
    dyn_range = float(rng.uniform(50.0, 60.0))
    lo = -dyn_range - float(rng.normal(-1.0, 2.0))
    alpha, beta = 255.0 / dyn_range, -lo * 255.0 / dyn_range
    offset = float(rng.uniform(0.0, rr))  # cardiac phase of the first frame
    if n_frames == 1:
        offset = 0.0  # a still is captured at end-diastole
    times = np.arange(n_frames, dtype=np.float64) / fps
    resp_period, resp_phase = float(rng.uniform(3.5, 5.0)), float(rng.uniform(0.0, 1.0))
    boil = float(rng.uniform(5.0, 8.0))  # rad/s: speckle decorrelation rate
    boil0 = float(rng.uniform(0.0, 2 * math.pi))
    box = _ColourBox(sector, model.doppler_roi, rng) if doppler and model.doppler_roi is not None else None
    overlay = _Overlay(
        sector,
        rng,
        view=view,
        fps=fps,
        heart_rate=hr,
        times=times,
        rr_offset=offset,
        doppler=doppler,
        nyquist=box.nyquist_cm_s if box else None,
    )

    colour = not grayscale
    frames = np.zeros((n_frames, height, width, 3) if colour else (n_frames, height, width), dtype=np.uint8)
    lv_area = np.full(n_frames, np.nan)
    cavities: list[FloatArray] = []
    canvas = np.empty((sector.h2, sector.w2), dtype=np.float32)
    lv_mask = np.zeros((height, width), dtype=np.uint8)
    sector_u8 = sector.mask.astype(np.uint8)
    grad_scale = np.float32(0.09)
    for k, t in enumerate(times):
        resp = 0.5 * (1.0 - math.cos(2 * math.pi * (t / resp_period + resp_phase)))
        state: CardiacState = cardiac_state(t + offset, hr, resp)
        scene = model.scene(state)
        np.copyto(canvas, bg)
        _paint(canvas, scene, sector)
        tissue = canvas.copy() if box is not None else canvas
        canvas += patchy
        cv2.max(canvas, floor, dst=canvas)
        blurred = _f32(cv2.GaussianBlur(canvas, (0, 0), 0.8))
        # specular boost where the beam meets a boundary head-on
        gx = _f32(cv2.Sobel(blurred, cv2.CV_32F, 1, 0, ksize=3, scale=0.125))
        gy = _f32(cv2.Sobel(blurred, cv2.CV_32F, 0, 1, ksize=3, scale=0.125))
        radial = np.abs(gx * sector.ux2 + gy * sector.uy2)
        blurred += np.minimum(radial * grad_scale, 3.0) * (blurred > -30.0)
        full = _f32(cv2.resize(blurred, (width, height), interpolation=cv2.INTER_LINEAR))
        lnamp = motion.warp(speckle.log_amplitude(boil0 + boil * t), state.contraction)
        cv2.scaleAdd(lnamp, _DB_PER_LN, full, dst=full)
        np.add(full, gain, out=full)
        np.maximum(full, np.float32(lo), out=full)
        img = np.asarray(cv2.convertScaleAbs(full, alpha=alpha, beta=beta), dtype=np.uint8)
        if colour:
            rgb = cv2.LUT(cv2.merge([img, img, img]), greys)
            if box is not None and scene.flows:
                col, show = box.render(scene, sector, tissue, k)
                sy, sx = box.slice_half
                big = np.zeros((sector.h2, sector.w2, 3), dtype=np.uint8)
                big_show = np.zeros((sector.h2, sector.w2), dtype=np.uint8)
                big[sy, sx] = col
                big_show[sy, sx] = show
                fy, fx = box.slice_full
                col_full = cv2.resize(big, (width, height), interpolation=cv2.INTER_NEAREST)[fy, fx]
                show_full = cv2.resize(big_show, (width, height), interpolation=cv2.INTER_NEAREST)[fy, fx].astype(bool)
                show_full &= box.mask[fy, fx]
                region = rgb[fy, fx]
                region[show_full] = col_full[show_full]
            frames[k] = rgb
        else:
            frames[k] = cv2.LUT(img, greys)
        if scene.lv_cavity is not None:
            lv_mask[:] = 0
            cv2.fillPoly(lv_mask, [_fixed(sector.to_full(scene.lv_cavity))], (1,), lineType=cv2.LINE_8, shift=4)
            for hole in scene.lv_holes:
                cv2.fillPoly(lv_mask, [_fixed(sector.to_full(hole))], (0,), lineType=cv2.LINE_8, shift=4)
            lv_area[k] = float(cv2.countNonZero(lv_mask & sector_u8))
            cavities.append(sector.to_full(scene.lv_cavity))
    if box is not None:
        _outline_box(frames, box)
    overlay.apply(frames, times, grayscale)

    ed = _ed_frames(times, offset, rr)
    return RenderedClip(
        frames=frames,
        fps=float(fps),
        view=view,
        colour=colour,
        sector_box=sector.box,
        lv_area_px=lv_area,
        ed_frames=ed,
        lv_centre=_lv_centre(cavities, lv_area),
    )


def _outline_box(frames: U8, box: _ColourBox) -> None:
    """Thin grey outline of the colour box, as colour-flow cines show it."""
    edge = box.mask.astype(np.uint8)
    edge = edge - cv2.erode(edge, np.ones((3, 3), np.uint8))
    ys, xs = np.nonzero(
        edge & ((np.arange(edge.shape[1])[None, :] // 3 + np.arange(edge.shape[0])[:, None] // 3) % 2 == 0)
    )
    frames[:, ys, xs] = 150


def _ed_frames(times: FloatArray, offset: float, rr: float) -> tuple[int, ...]:
    """Frames nearest to each R wave (end-diastole) within the clip."""
    if len(times) == 0:
        return ()
    dt = times[1] - times[0] if len(times) > 1 else rr
    first = math.floor((times[0] + offset) / rr)
    out: list[int] = []
    m = first
    while True:
        t_r = m * rr - offset
        if t_r > times[-1] + 0.5 * dt:
            break
        idx = round((t_r - times[0]) / dt)
        if 0 <= idx < len(times) and abs(times[idx] - t_r) <= 0.5 * dt + 1e-9 and idx not in out:
            out.append(idx)
        m += 1
    return tuple(out)


def _lv_centre(cavities: list[FloatArray], areas: FloatArray) -> tuple[int, int] | None:
    """A pixel inside the LV cavity of every frame: the centroid of the smallest cavity, checked."""
    if not cavities:
        return None
    k = int(np.nanargmin(areas))
    c = cavities[k].mean(axis=0)
    point = (round(c[0]), round(c[1]))
    for cav in cavities:
        contour = cav.astype(np.float32).reshape(-1, 1, 2)
        if cv2.pointPolygonTest(contour, (float(point[0]), float(point[1])), False) < 0:
            return None
    return point
