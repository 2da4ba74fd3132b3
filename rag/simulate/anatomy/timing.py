"""Cardiac and respiratory timing of the simulated heart: where a frame falls in the cycle (valve
opening, contraction, systolic and diastolic flow envelopes) and the ECG trace that goes with it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rag.simulate.anatomy.geometry import FloatArray


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
