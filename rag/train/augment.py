"""Training-time clip augmentation: the acquisition differences between studies, drawn at random.

Gain, contrast (gamma), depth (zoom), probe position (shift) and probe angle (rotation) differ from
one study to the next and say nothing about the heart. Left alone, a video tower can tell studies
apart by them; drawing them afresh for every clip in every epoch makes them useless for that. One
draw per clip, shared by all its frames (they are the same acquisition). Pixels uncovered by the
transform are black, like the background outside the ultrasound sector.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rag.encoders.spec import Preprocessing

__all__ = ["ClipAugment"]


@dataclass(frozen=True)
class ClipAugment:
    """Ranges of the random acquisition changes; a range of (1, 1) or 0 turns that change off."""

    gain: tuple[float, float] = (0.75, 1.3)
    gamma: tuple[float, float] = (0.8, 1.25)
    zoom: tuple[float, float] = (0.9, 1.1)
    shift: float = 0.06  # fraction of the frame, each axis
    rotation: float = 8.0  # degrees, either way

    def __call__(self, x: torch.Tensor, pre: Preprocessing, generator: torch.Generator | None = None) -> torch.Tensor:
        """One clip (3, T, H, W), normalised as ``pre`` says -> the same clip, randomly re-acquired."""

        def uniform(lo: float, hi: float) -> float:
            return lo + (hi - lo) * float(torch.rand((), generator=generator))

        mean = torch.tensor(pre.mean, dtype=x.dtype).view(3, 1, 1, 1)
        std = torch.tensor(pre.std, dtype=x.dtype).view(3, 1, 1, 1)
        raw = (x * std + mean).clamp(0, 255) / 255.0
        raw = (raw ** uniform(*self.gamma) * uniform(*self.gain)).clamp(0, 1)
        zoom = uniform(*self.zoom)
        angle = math.radians(uniform(-self.rotation, self.rotation))
        tx, ty = uniform(-self.shift, self.shift) * 2, uniform(-self.shift, self.shift) * 2
        cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
        theta = torch.tensor([[cos, -sin, tx], [sin, cos, ty]], dtype=x.dtype)
        frames = raw.permute(1, 0, 2, 3)  # (T, 3, H, W)
        grid = F.affine_grid(theta.expand(frames.shape[0], 2, 3), list(frames.shape), align_corners=False)
        moved = F.grid_sample(frames, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return ((moved.permute(1, 0, 2, 3) * 255.0) - mean) / std
