"""The pixel renderer: every view renders, a seed fixes the bytes, burned-in labels stay outside the imaging
sector, and the findings of the ground truth can be measured back from the pixels."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from rag.simulate.anatomy import DOPPLER_VIEWS
from rag.simulate.preview import contact_sheet
from rag.simulate.render import RenderedClip, render_clip
from rag.simulate.truth import StudyTruth
from rag.vocab.views import COARSE_VIEWS

NO_LV = {"SSN", "Doppler_Parasternal_Short"}

HEART = StudyTruth(
    study_index=0,
    date=dt.date(2021, 5, 4),
    heart_rate=70.0,
    lvef=60.0,
    lvedd_cm=4.9,
    wall_cm=1.0,
    rv_dilation=0,
    rv_dysfunction=False,
    la_dilation=0,
    ra_dilation=0,
    effusion=0,
    mr=0,
    ar=0,
    tr=0,
    aortic_stenosis=0,
    av_thickened=False,
    ivc_dilated=False,
    ivc_collapse=True,
    pasp_mmhg=25.0,
    wall_motion="normal",
)


def _gray(frame: np.ndarray) -> np.ndarray:
    return frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def _box_mask(clip: RenderedClip) -> np.ndarray:
    x0, y0, x1, y1 = clip.sector_box
    mask = np.zeros(clip.frames.shape[1:3], dtype=bool)
    mask[y0 : y1 + 1, x0 : x1 + 1] = True
    return mask


def _lv_area(frame: np.ndarray, centre: tuple[int, int]) -> float:
    """Echo-free area connected to the LV centre: smooth, threshold dark pixels, take that component."""
    smooth = cv2.GaussianBlur(_gray(frame), (0, 0), 2.5)
    dark = (smooth < 45).astype(np.uint8)
    _, labels = cv2.connectedComponents(dark, connectivity=4)
    label = labels[centre[1], centre[0]]
    return float((labels == label).sum()) if label else 0.0


@pytest.mark.parametrize("view", COARSE_VIEWS)
def test_every_view_renders_with_the_promised_shapes(view: str) -> None:
    clip = render_clip(HEART, view, rng=np.random.default_rng(3), height=96, width=128, n_frames=5, fps=25.0)
    colour = view in DOPPLER_VIEWS or clip.colour
    assert clip.view == view and clip.fps == 25.0
    assert clip.frames.dtype == np.uint8
    assert clip.frames.shape == ((5, 96, 128, 3) if colour else (5, 96, 128))
    assert clip.colour == (clip.frames.ndim == 4)
    if view in DOPPLER_VIEWS:
        assert clip.colour
    assert clip.lv_area_px.shape == (5,) and clip.lv_area_px.dtype == np.float64
    if view in NO_LV:
        assert np.isnan(clip.lv_area_px).all() and clip.lv_centre is None
    else:
        assert (clip.lv_area_px > 0).all()
        assert clip.lv_centre is not None
    x0, y0, x1, y1 = clip.sector_box
    assert 0 <= x0 < x1 < 128 and 0 <= y0 < y1 < 96
    assert all(0 <= k < 5 for k in clip.ed_frames)


def test_defaults_pick_frame_rate_length_and_grayscale_from_the_generator() -> None:
    rng = np.random.default_rng(11)
    clips = [render_clip(HEART, "A4C", rng=rng, height=64, width=80) for _ in range(12)]
    assert all(30.0 <= c.fps <= 60.0 for c in clips)
    assert all(1 <= len(c.frames) <= 80 for c in clips)
    cycles = [len(c.frames) / c.fps / (60.0 / HEART.heart_rate) for c in clips]
    assert min(cycles) >= 1.2 and max(cycles) <= 2.05
    kinds = {c.frames.ndim for c in clips}
    assert kinds == {3, 4}, "both true-grayscale and RGB B-mode cines must occur"
    doppler = render_clip(HEART, "Apical_Doppler", rng=rng, height=64, width=80)
    assert doppler.colour and doppler.frames.ndim == 4


def test_same_generator_state_gives_identical_frames() -> None:
    a = render_clip(HEART, "Doppler_Parasternal_Long", rng=np.random.default_rng(5), height=128, width=160, n_frames=6)
    b = render_clip(HEART, "Doppler_Parasternal_Long", rng=np.random.default_rng(5), height=128, width=160, n_frames=6)
    c = render_clip(HEART, "Doppler_Parasternal_Long", rng=np.random.default_rng(6), height=128, width=160, n_frames=6)
    assert a.frames.tobytes() == b.frames.tobytes()
    assert np.array_equal(a.lv_area_px, b.lv_area_px) and a.ed_frames == b.ed_frames
    assert a.frames.tobytes() != c.frames.tobytes()


def test_bad_arguments_name_the_problem() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="Available"):
        render_clip(HEART, "A6C", rng=rng)
    with pytest.raises(ValueError, match="colour-Doppler"):
        render_clip(HEART, "Apical_Doppler", rng=rng, grayscale=True)
    with pytest.raises(ValueError, match="n_frames"):
        render_clip(HEART, "A4C", rng=rng, n_frames=0)


def test_a_still_is_one_end_diastolic_frame() -> None:
    clip = render_clip(HEART, "A2C", rng=np.random.default_rng(2), height=96, width=128, n_frames=1, grayscale=False)
    assert clip.frames.shape == (1, 96, 128, 3)
    assert clip.ed_frames == (0,)


@pytest.mark.parametrize("grayscale", [True, False])
def test_labels_and_ecg_lie_outside_the_sector_and_speckle_inside(grayscale: bool) -> None:
    clip = render_clip(HEART, "A4C", rng=np.random.default_rng(8), n_frames=12, fps=30.0, grayscale=grayscale)
    inside = _box_mask(clip)
    x0, y0, x1, y1 = clip.sector_box
    for frame in clip.frames:
        outside = _gray(frame)[~inside]
        assert (outside > 0).sum() > 400, "labels, grey bar and ECG are burned in outside the sector"
        assert (_gray(frame)[y0:y1].max(axis=1) > 0).sum() > 0.9 * (y1 - y0)
    if not grayscale:
        # the green or yellow ECG trace: saturated pixels below the sector, none inside it
        hsv = cv2.cvtColor(clip.frames[0], cv2.COLOR_RGB2HSV)
        trace = (hsv[..., 1] > 150) & (hsv[..., 2] > 150) & (hsv[..., 0] > 20) & (hsv[..., 0] < 80)
        assert trace[y1 + 1 :].sum() > 100
        assert trace[inside].sum() == 0
    # inside the fan: log-compressed speckle over dark blood pools, not flat fills
    gray = _gray(clip.frames[0]).astype(np.float64)
    fan = gray[y0 + 40 : y1 - 20, x0 + 60 : x1 - 60]
    tissue = fan[fan > 60]
    assert tissue.size > 0.1 * fan.size
    assert 0.25 < tissue.std() / tissue.mean() < 0.8
    assert np.mean(np.abs(np.diff(fan, axis=1))) > 4.0
    assert (fan < 30).mean() > 0.1, "blood pools are near-black"


def test_lv_area_measured_from_pixels_tracks_the_lvef() -> None:
    measured = []
    for lvef in (25.0, 45.0, 65.0):
        clip = render_clip(replace(HEART, lvef=lvef), "A4C", rng=np.random.default_rng(4), n_frames=40, fps=30.0)
        assert clip.lv_centre is not None and clip.ed_frames
        areas = np.array([_lv_area(f, clip.lv_centre) for f in clip.frames])
        eda = max(areas[k] for k in clip.ed_frames)  # the mitral valve is closed at end-diastole
        esa = areas.min()
        ef = 100.0 * (1.0 - (esa / eda) ** 1.5)
        assert abs(ef - lvef) < 8.0, (lvef, ef)
        truth_ef = 100.0 * (1.0 - (np.nanmin(clip.lv_area_px) / np.nanmax(clip.lv_area_px)) ** 1.5)
        assert abs(truth_ef - lvef) < 1.5
        # the pixel areas follow the reported true areas through the cycle
        assert np.corrcoef(areas[areas < 1.05 * eda], clip.lv_area_px[areas < 1.05 * eda])[0, 1] > 0.9
        measured.append(ef)
    assert measured[0] < measured[1] < measured[2]


def _effusion_gap(clip: RenderedClip) -> int:
    """Echo-free gap (pixels) between the LV posterior wall and the next bright echo (the pericardium), on
    the column through the LV centre; 0 when no bright echo follows within 2.5 cm."""
    assert clip.lv_centre is not None
    cx, cy = clip.lv_centre
    frame = cv2.GaussianBlur(_gray(clip.frames[clip.ed_frames[0]]), (0, 0), 2.0).astype(np.float64)
    profile = frame[cy : clip.sector_box[3] - 4, cx - 3 : cx + 4].mean(axis=1)
    wall = int(np.argmax(profile > 70))  # first bright pixel below the cavity: the posterior wall
    gap_start = wall + int(np.argmax(profile[wall:] < 40))
    bright = np.flatnonzero(profile[gap_start : gap_start + 50] > 100)
    return int(bright[0]) if bright.size else 0


def test_pericardial_effusion_is_an_echo_free_band_behind_the_lv() -> None:
    runs = {}
    for grade in (0, 3):
        clip = render_clip(
            replace(HEART, effusion=grade), "Parasternal_Long", rng=np.random.default_rng(9), n_frames=30, fps=30.0
        )
        runs[grade] = _effusion_gap(clip)
    px_per_cm = (clip.sector_box[3] - clip.sector_box[1]) / 16.0
    assert runs[0] < 0.3 * px_per_cm and runs[3] > 0.7 * px_per_cm, runs


def _colour_pixels(clip: RenderedClip, *, systole: bool) -> int:
    """Highly saturated (colour-flow) pixels inside the sector, summed over the systolic frames (up to 0.45 s
    after an R wave) or over the others."""
    inside = _box_mask(clip)
    rr_frames = clip.fps * 60.0 / HEART.heart_rate
    total = 0
    for k, frame in enumerate(clip.frames):
        r_waves = [e - rr_frames for e in clip.ed_frames[:1]] + list(clip.ed_frames)
        since_r = min((k - e) / clip.fps for e in r_waves if k >= e)
        if (since_r <= 0.45) != systole:
            continue
        hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
        total += int(((hsv[..., 1] > 140) & (hsv[..., 2] > 90) & inside).sum())
    return total


def test_mitral_regurgitation_shows_as_a_systolic_colour_jet() -> None:
    systolic, diastolic = {}, {}
    for mr in (0, 3):
        clip = render_clip(
            replace(HEART, mr=mr), "Apical_Doppler", rng=np.random.default_rng(12), n_frames=30, fps=22.0
        )
        systolic[mr] = _colour_pixels(clip, systole=True)
        diastolic[mr] = _colour_pixels(clip, systole=False)
    assert systolic[3] > 3 * systolic[0] + 2000, systolic
    assert diastolic[3] < 1.5 * diastolic[0] + 2000, "the jet is systolic"


def test_regional_hypokinesis_reduces_that_wall_s_motion() -> None:
    """A2C with inferior akinesis: the inferior wall (screen left) hardly moves, the anterior wall does."""
    excursion = {}
    for motion in ("normal", "inferior akinesis"):
        clip = render_clip(
            replace(HEART, wall_motion=motion), "A2C", rng=np.random.default_rng(1), n_frames=40, fps=30.0
        )
        assert clip.lv_centre is not None
        ed, es = clip.ed_frames[0], int(np.nanargmin(clip.lv_area_px))
        edges = []
        for k in (ed, es):
            cx, cy = clip.lv_centre
            smooth = cv2.GaussianBlur(_gray(clip.frames[k]), (0, 0), 2.5)
            row = smooth[cy - 3 : cy + 4].mean(axis=0) < 45
            left = cx - int(np.argmax(~row[cx::-1]))
            right = cx + int(np.argmax(~row[cx:]))
            edges.append((left, right))
        excursion[motion] = (edges[1][0] - edges[0][0], edges[0][1] - edges[1][1])
    normal_left, normal_right = excursion["normal"]
    akin_left, akin_right = excursion["inferior akinesis"]
    assert normal_left > 4 and normal_right > 4
    assert akin_left < 0.4 * normal_left
    assert akin_right > 0.8 * normal_right


def test_contact_sheet_writes_a_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    clips = [render_clip(HEART, v, rng=rng, height=96, width=128, n_frames=6) for v in ("A4C", "SSN", "Apical_Doppler")]
    out = contact_sheet(clips, tmp_path / "sheet.png")
    img = cv2.imread(str(out))
    assert img is not None and img.shape[0] > 200 and img.shape[1] >= 3 * 128


def test_aortic_stenosis_narrows_the_opening_and_aliases_beyond_the_valve_in_systole() -> None:
    from rag.simulate.anatomy.heart import AS_OPENING, aortic_cusps

    openings = [aortic_cusps(replace(HEART, aortic_stenosis=g, av_thickened=g > 0), 1.0) for g in range(4)]
    assert [o for o, _ in openings] == list(AS_OPENING)
    assert all(a[0] > b[0] and a[1] < b[1] for a, b in itertools.pairwise(openings)), openings
    systolic, diastolic = {}, {}
    for grade in (0, 2, 3):
        clip = render_clip(
            replace(HEART, aortic_stenosis=grade, av_thickened=grade > 0),
            "Doppler_Parasternal_Long",
            rng=np.random.default_rng(5),
            n_frames=30,
            fps=22.0,
        )
        systolic[grade] = _colour_pixels(clip, systole=True)
        diastolic[grade] = _colour_pixels(clip, systole=False)
    assert systolic[2] > systolic[0] + 1500 and systolic[3] > systolic[0] + 1500, systolic
    assert max(diastolic.values()) == min(diastolic.values()), "the stenotic jet is systolic"


def test_aortic_regurgitation_jet_widens_with_its_grade_in_diastole() -> None:
    diastolic = []
    for grade in range(4):
        clip = render_clip(
            replace(HEART, ar=grade), "Doppler_Parasternal_Long", rng=np.random.default_rng(5), n_frames=30, fps=22.0
        )
        diastolic.append(_colour_pixels(clip, systole=False))
    assert diastolic == sorted(diastolic) and diastolic[3] > diastolic[0] + 1000, diastolic
