"""``mvit-v2-s``: EchoPrime's video encoder architecture, and a loader for its released weights."""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rag.core.errors import CheckpointError, EncoderError
from rag.encoders.model import EchoEncoder, VideoTower
from rag.encoders.spec import MViTKwargs
from rag.encoders.towers import BuildContext

ECHOPRIME_WEIGHTS_HINT = (
    "EchoPrime's encoder weights are the file echo_prime_encoder.pt inside model_data.zip of the "
    "EchoPrime release v1.0.0 (github.com/echonet/EchoPrime); unzip it and pass that file's path"
)


def mvit_v2_s_backbone(embed_dim: int = 512, dropout: float = 0.5) -> nn.Module:
    """torchvision ``mvit_v2_s(weights=None)`` with ``head[-1] = Linear(768, embed_dim)``.

    Input (B, 3, 16, 224, 224) float32; output (B, embed_dim).
    """
    from torchvision.models.video import mvit_v2_s

    net = mvit_v2_s(weights=None)
    head: Any = net.head
    head[0].p = dropout
    head[-1] = nn.Linear(head[-1].in_features, embed_dim)
    backbone: nn.Module = net
    return backbone


class MViTVideoTower(VideoTower):
    """torchvision MViTv2-S with a ``embed_dim`` head; the embedding is also what the view head reads.

    Input (B, 3, 16, 224, 224) float32 normalised (EchoPrime's mean/std); both outputs (B, embed_dim).
    """

    variable_frames = False

    def __init__(self, *, embed_dim: int = 512, dropout: float = 0.5) -> None:
        super().__init__()
        self.backbone = mvit_v2_s_backbone(embed_dim, dropout)
        self.embed_dim = embed_dim
        self.feature_dim = embed_dim

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 3, 16, 224, 224) -> embedding (B, embed_dim), features (B, embed_dim) (the same tensor)."""
        emb: Tensor = self.backbone(x)
        return emb, emb


def build_video(ctx: BuildContext) -> MViTVideoTower:
    """The MViTv2-S tower of ``ctx.spec``."""
    kw = MViTKwargs.model_validate(ctx.video_kwargs)
    return MViTVideoTower(embed_dim=ctx.embed_dim, dropout=kw.dropout)


def _target_network(model: nn.Module) -> nn.Module:
    if isinstance(model, EchoEncoder):
        model = model.video
    if isinstance(model, MViTVideoTower):
        return model.backbone
    from torchvision.models.video import MViT

    if isinstance(model, MViT):
        net: nn.Module = model
        return net
    got = type(model).__name__
    if isinstance(model, nn.Module) and isinstance(getattr(model, "video", None), nn.Module):
        got += f" with video tower {type(model.video).__name__}"
    raise EncoderError(
        f"load_echoprime_weights needs an 'echoprime-mvit' encoder, its MViTVideoTower or a torchvision MViT, "
        f"got {got}; create one with rag.encoders.create('echoprime-mvit')"
    )


def _limited(keys: list[str], n: int = 8) -> str:
    shown = ", ".join(keys[:n])
    return f"{shown}, ... ({len(keys)} in all)" if len(keys) > n else shown


def load_echoprime_weights(model: nn.Module, path: str | Path) -> None:
    """Load EchoPrime's released video encoder state dict into an ``echoprime-mvit`` video tower.

    The file is a ``torch.save``-d state dict of ``mvit_v2_s`` with a 512-d last head layer; a
    ``"module."`` prefix (from ``DataParallel``) is stripped. It is read with ``weights_only=True``.

    Args:
        model: an :class:`EchoEncoder` built from ``echoprime-mvit``, its video tower, or a torchvision MViT.
        path: ``echo_prime_encoder.pt``.

    Raises:
        CheckpointError: the file is missing or unreadable, or its keys or shapes differ from the tower's
            (the message lists the missing, unexpected and mismatched keys).
    """
    net = _target_network(model)
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"EchoPrime weights file '{path}' does not exist. {ECHOPRIME_WEIGHTS_HINT}.")
    try:
        loaded: Any = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile) as e:
        raise CheckpointError(
            f"EchoPrime weights file '{path}' cannot be read as a torch state dict ({e}). {ECHOPRIME_WEIGHTS_HINT}."
        ) from e
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping) or not all(isinstance(v, Tensor) for v in loaded.values()):
        raise CheckpointError(
            f"'{path}' is not a state dict (a mapping of parameter names to tensors), "
            f"got {type(loaded).__name__}. {ECHOPRIME_WEIGHTS_HINT}."
        )
    state: dict[str, Tensor] = {str(k): v for k, v in loaded.items()}
    if state and all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(
        f"{k} {tuple(state[k].shape)} (tower: {tuple(expected[k].shape)})"
        for k in set(state) & set(expected)
        if state[k].shape != expected[k].shape
    )
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing keys: {_limited(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_limited(unexpected)}")
        if mismatched:
            parts.append(f"shape mismatches: {_limited(mismatched)}")
        raise CheckpointError(
            f"'{path}' does not fit torchvision mvit_v2_s with a {expected['head.1.weight'].shape[0]}-d head: "
            f"{'; '.join(parts)}. {ECHOPRIME_WEIGHTS_HINT}."
        )
    net.load_state_dict(state, strict=True)
