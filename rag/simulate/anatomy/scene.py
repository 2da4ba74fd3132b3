"""What a view model hands the renderer: a :class:`Scene` of filled polygons and strokes with their
echogenicity (dB below the brightest reflector), the LV cavity outline and the blood flows to colour;
the rigid :class:`Placement` of a heart model into the view and the :class:`ViewModel` protocol."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from rag.simulate.anatomy.geometry import FloatArray
from rag.simulate.anatomy.timing import CardiacState

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


def depth_for(scene: Scene, rng: np.random.Generator, margin: float, lo: float, hi: float) -> float:
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
