"""Frame composition of one cine (:func:`render_clip`): the anatomy of each frame painted, blurred,
multiplied by moving speckle, gained, log compressed and grey mapped, colour flow and overlay laid on,
and the truth of the pixels (LV area, end-diastolic frames, LV centre) recorded in a
:class:`RenderedClip`."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from rag.simulate.anatomy import DOPPLER_VIEWS, CardiacState, FloatArray, build_view, cardiac_state
from rag.simulate.render.doppler import ColourBox, outline_box
from rag.simulate.render.overlay import Overlay
from rag.simulate.render.sector import Sector, f32, fixed, paint, smooth_noise
from rag.simulate.render.tissue import Speckle, TissueMotion, grey_map, static_maps
from rag.simulate.truth import StudyTruth
from rag.vocab.views import COARSE_VIEWS

_MAX_FRAMES = 80


_DB_PER_LN = 20.0 / math.log(10.0)


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
    sector = Sector(height, width, model.depth_cm, rng)
    bg, floor, gain = static_maps(sector, model, rng)
    patchy = smooth_noise(rng, bg.shape, 5.0) * np.float32(2.0)  # tissue echogenicity is not uniform
    speckle = Speckle(sector, rng)
    motion = TissueMotion(model, sector, hr)
    greys = grey_map(rng, grayscale)
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
    box = ColourBox(sector, model.doppler_roi, rng) if doppler and model.doppler_roi is not None else None
    overlay = Overlay(
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
        paint(canvas, scene, sector)
        tissue = canvas.copy() if box is not None else canvas
        canvas += patchy
        cv2.max(canvas, floor, dst=canvas)
        blurred = f32(cv2.GaussianBlur(canvas, (0, 0), 0.8))
        # specular boost where the beam meets a boundary head-on
        gx = f32(cv2.Sobel(blurred, cv2.CV_32F, 1, 0, ksize=3, scale=0.125))
        gy = f32(cv2.Sobel(blurred, cv2.CV_32F, 0, 1, ksize=3, scale=0.125))
        radial = np.abs(gx * sector.ux2 + gy * sector.uy2)
        blurred += np.minimum(radial * grad_scale, 3.0) * (blurred > -30.0)
        full = f32(cv2.resize(blurred, (width, height), interpolation=cv2.INTER_LINEAR))
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
            cv2.fillPoly(lv_mask, [fixed(sector.to_full(scene.lv_cavity))], (1,), lineType=cv2.LINE_8, shift=4)
            for hole in scene.lv_holes:
                cv2.fillPoly(lv_mask, [fixed(sector.to_full(hole))], (0,), lineType=cv2.LINE_8, shift=4)
            lv_area[k] = float(cv2.countNonZero(lv_mask & sector_u8))
            cavities.append(sector.to_full(scene.lv_cavity))
    if box is not None:
        outline_box(frames, box)
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
