"""``tiny-cnn-attnpool``: a small per-frame CNN with temporal attention pooling, fast on CPU."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from rag.encoders.model import VideoTower
from rag.encoders.spec import TinyVideoKwargs
from rag.encoders.towers import BuildContext


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.GroupNorm(math.gcd(channels, 8), channels)


class TinyVideoTower(VideoTower):
    """Per-frame CNN, learned-query attention over frames (+ optional motion term), linear map to the embedding.

    Input (B, 3, T, H, W) float32 normalised, 1 <= T <= ``frames``; any H, W (global pooling), the spec
    fixes them. Features: (B, widths[-1]); embedding: (B, embed_dim), not normalised.
    """

    variable_frames = True

    def __init__(
        self,
        *,
        frames: int,
        embed_dim: int,
        widths: tuple[int, ...] = (24, 32, 48, 64, 96),
        norm: str = "group",
        feature_norm: str = "batch",
        heads: int = 4,
        dropout: float = 0.1,
        motion: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for width in widths:
            layers += [
                nn.Conv2d(c_in, width, 3, stride=2, padding=1, bias=False),
                _norm(norm, width),
                nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, padding=1, bias=False),
                _norm(norm, width),
                nn.ReLU(inplace=True),
            ]
            c_in = width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.frame_encoder = nn.Sequential(*layers)
        channels = widths[-1]
        self.max_frames = frames
        self.pos_embed = nn.Parameter(torch.zeros(1, frames, channels))
        self.query = nn.Parameter(torch.zeros(1, 1, channels))
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)
        # the spread of each frame feature over the cycle: contraction, wall motion
        self.motion: nn.Module | None = nn.Linear(channels, channels, bias=False) if motion else None
        self.norm: nn.Module = nn.BatchNorm1d(channels) if feature_norm == "batch" else nn.LayerNorm(channels)
        self.proj = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels, embed_dim))
        self.feature_dim = channels
        self.embed_dim = embed_dim
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.query, std=0.02)
        for m in self.frame_encoder.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 3, T, H, W) -> embedding (B, embed_dim), features (B, feature_dim)."""
        b, c, t, h, w = x.shape
        raw = self.frame_encoder(x.transpose(1, 2).reshape(b * t, c, h, w)).view(b, t, -1)
        frames = raw + self.pos_embed[:, :t]
        pooled, _ = self.attn(self.query.expand(b, -1, -1), frames, frames, need_weights=False)
        features = pooled.squeeze(1) + frames.mean(dim=1)
        if self.motion is not None and t > 1:
            features = features + self.motion(raw.std(dim=1))
        features = self.norm(features)
        return self.proj(features), features


def build_video(ctx: BuildContext) -> TinyVideoTower:
    """The tiny tower of ``ctx.spec``."""
    kw = TinyVideoKwargs.model_validate(ctx.video_kwargs)
    return TinyVideoTower(
        frames=ctx.preprocessing.frames,
        embed_dim=ctx.embed_dim,
        widths=kw.widths,
        norm=kw.norm,
        feature_norm=kw.feature_norm,
        heads=kw.heads,
        dropout=kw.dropout,
        motion=kw.motion,
    )
