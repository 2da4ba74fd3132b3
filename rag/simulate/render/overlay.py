"""Everything burned in outside the sector, as on a real cart: site, probe and acquisition labels, view
name, orientation marker, grey bar, depth marks, colour bar and the ECG trace with its sweep."""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

from rag.simulate.anatomy import FloatArray, ecg_mv
from rag.simulate.render.doppler import colour_palette
from rag.simulate.render.sector import U8, Sector, fixed

_PROBES = ("S5-1", "M5Sc", "X5-1", "P4-2", "4V1c", "S4-2", "X7-2t")
_SITES = ("ECHO LAB 2", "CARDIOLOGY", "ADULT ECHO", "CV IMAGING", "ECHO 1", "NONINVASIVE LAB")


def _text(
    img: U8, mask: npt.NDArray[np.bool_], text: str, org: tuple[int, int], scale: float, colour: tuple[int, int, int]
) -> None:
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)
    # the mask follows what was drawn (anti-aliased pixels included)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    y0, y1 = max(org[1] - th - 1, 0), min(org[1] + base + 1, img.shape[0])
    x0, x1 = max(org[0] - 1, 0), min(org[0] + tw + 1, img.shape[1])
    mask[y0:y1, x0:x1] |= img[y0:y1, x0:x1].max(axis=2) > 0


class Overlay:
    """Everything burned in outside the sector; static parts drawn once, the ECG cursor per frame."""

    def __init__(
        self,
        sector: Sector,
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
        cv2.polylines(self.img, [fixed(self.trace)], False, self.ecg_colour, 1, cv2.LINE_AA, shift=4)
        strip = slice(h - sector.strip + 1, h)
        self.mask[strip] |= self.img[strip].max(axis=2) > 0
        self.sweep = rng.random() < 0.4
        # nothing burned in may reach the sector's bounding box (the DICOM ultrasound region)
        self.mask[max(y0 - 1, 0) : sector.box[3] + 2, max(x0 - 1, 0) : x1 + 2] = False
        self.img[~self.mask] = 0

    def _colour_bar(self, nyquist: int, u: float, scale: float) -> None:
        h, w = self.img.shape[:2]
        pal = colour_palette()[0]
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
