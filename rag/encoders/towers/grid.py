"""``grid-cnn``: a per-frame CNN that keeps a coarse spatial grid, pooled over time as mean and spread."""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn

from rag.encoders.model import VideoTower
from rag.encoders.spec import GridVideoKwargs
from rag.encoders.towers import BuildContext


class GridVideoTower(VideoTower):
    """Frame CNN -> ``grid`` x ``grid`` map per frame -> mean and spread over frames -> hidden -> embedding.

    Input (B, 3, T, H, W) float32 normalised, 1 <= T <= the spec's frames; every ``frame_step``-th
    frame is read. Features: (B, hidden); embedding: (B, embed_dim), not normalised.
    """

    variable_frames = True

    def __init__(
        self,
        *,
        embed_dim: int,
        widths: tuple[int, ...] = (16, 32, 64, 96),
        grid: int = 4,
        hidden: int = 256,
        frame_step: int = 2,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise((3, *widths)):
            layers += [nn.Conv2d(a, b, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True)]
        layers.append(nn.AdaptiveAvgPool2d(grid))
        self.frame_encoder = nn.Sequential(*layers)
        self.frame_step = frame_step
        self.hidden = nn.Sequential(
            nn.Linear(2 * widths[-1] * grid * grid, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)
        )
        self.proj = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, embed_dim))
        self.feature_dim = hidden
        self.embed_dim = embed_dim
        for m in self.frame_encoder.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 3, T, H, W) -> embedding (B, embed_dim), features (B, hidden)."""
        x = x[:, :, :: self.frame_step]
        b, c, t, h, w = x.shape
        f = self.frame_encoder(x.transpose(1, 2).reshape(b * t, c, h, w)).flatten(1).view(b, t, -1)
        spread = f.std(dim=1, unbiased=False) if t > 1 else torch.zeros_like(f[:, 0])
        features = self.hidden(torch.cat([f.mean(dim=1), spread], dim=1))
        return self.proj(features), features


def build_video(ctx: BuildContext) -> GridVideoTower:
    """The grid tower of ``ctx.spec``."""
    kw = GridVideoKwargs.model_validate(ctx.video_kwargs)
    return GridVideoTower(
        embed_dim=ctx.embed_dim,
        widths=kw.widths,
        grid=kw.grid,
        hidden=kw.hidden,
        frame_step=kw.frame_step,
        dropout=kw.dropout,
    )
