"""Supervised heads on the clip embedding, for training: ordinal finding grades and measurements.

As PanEcho trains its tasks side by side, one linear layer on the L2-normalised clip embedding
predicts, for every finding (:func:`rag.train.findings.finding_names`), P(grade >= 1), P(grade >= 2)
and P(grade >= 3) (ordinal: a severe finding is also moderate and mild), and the standardised value
of each measurement of :data:`HEAD_VALUES`. Because the layer is linear on the embedding, clips whose
findings differ must lie apart in it, so a study's nearest neighbours share its findings.

A clip is scored only on what its view shows: the findings and measurements whose section the view
informs (weight >= 0.5 in ``rag.vocab.view_sections``); clips of unknown view and measurements the
report leaves out do not count. Labels come from the report (its grades and its measurements), as a
real archive has them. The heads ride in the checkpoint's ``extra`` (for resume and evaluation); the
embedding is what retrieval uses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.train.findings import finding_names, finding_sections
from rag.vocab.view_sections import informed_sections

if TYPE_CHECKING:
    import torch

    from rag.train.data import ClipItem

__all__ = ["HEAD_VALUES", "LEVELS", "make_heads", "shown_masks"]

HEAD_VALUES: tuple[str, ...] = ("lvef", "pasp", "lvidd", "la_diameter", "ivsd")
"""Measurements (store names) the heads regress: ejection fraction, PA pressure and three sizes."""

LEVELS = 3
"""Ordinal outputs per finding: P(grade >= 1), P(grade >= 2), P(grade >= 3)."""


def _value_sections() -> tuple[str, ...]:
    from rag.vocab.findings import PHENOTYPES

    out = []
    for m in HEAD_VALUES:
        section = next(p.section for p in PHENOTYPES.values() if m in p.measurements)
        out.append(section)
    return tuple(out)


@cache
def _masks(view: str) -> tuple[tuple[bool, ...], tuple[bool, ...]]:
    shown = set(informed_sections(view, threshold=0.5))
    return tuple(s in shown for s in finding_sections()), tuple(s in shown for s in _value_sections())


def shown_masks(views: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """(clips, findings) and (clips, values) bool: what each clip's view shows (nothing when unknown)."""
    n_f, n_v = len(finding_names()), len(HEAD_VALUES)
    f = np.zeros((len(views), n_f), bool)
    v = np.zeros((len(views), n_v), bool)
    for i, view in enumerate(views):
        if view is not None:
            f[i], v[i] = _masks(view)
    return f, v


def make_heads(embed_dim: int, items: Sequence[ClipItem]) -> torch.nn.Module:
    """Fresh heads, their measurement statistics (mean, std) fitted on ``items`` (training clips)."""
    import torch
    from torch import nn

    values = np.array([it.values for it in items if len(it.values) == len(HEAD_VALUES)], dtype=np.float64)
    values = values.reshape(-1, len(HEAD_VALUES))
    mean = np.nan_to_num(np.nanmean(values, axis=0), nan=0.0) if len(values) else np.zeros(len(HEAD_VALUES))
    std = np.nan_to_num(np.nanstd(values, axis=0), nan=1.0) if len(values) else np.ones(len(HEAD_VALUES))

    class Heads(nn.Module):
        """Linear map of the scaled unit embedding to ordinal finding logits and standardised values."""

        def __init__(self) -> None:
            super().__init__()
            self.n_f = len(finding_names())
            self.linear = nn.Linear(embed_dim, LEVELS * self.n_f + len(HEAD_VALUES))
            self.scale = math.sqrt(embed_dim)  # unit vectors -> unit-variance inputs
            self.register_buffer("value_mean", torch.tensor(mean, dtype=torch.float32))
            self.register_buffer("value_std", torch.tensor(np.maximum(std, 1e-6), dtype=torch.float32))

        def forward(self, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            """(B, D) unit embeddings -> ordinal logits (B, findings, LEVELS), standardised values (B, values)."""
            out = self.linear(emb.float() * self.scale)
            return out[:, : LEVELS * self.n_f].view(-1, self.n_f, LEVELS), out[:, LEVELS * self.n_f :]

        def finding_probability(self, emb: torch.Tensor) -> torch.Tensor:
            """(B, findings) P(grade >= 1)."""
            return torch.sigmoid(self(emb)[0][:, :, 0])

        def loss(self, emb: torch.Tensor, batch: Sequence[ClipItem], view_names: Sequence[str]) -> torch.Tensor | None:
            """Ordinal BCE over shown findings + MSE over shown, reported measurements (standardised)."""
            import torch.nn.functional as F

            views = [view_names[it.view] if it.view >= 0 else None for it in batch]
            fmask_np, vmask_np = shown_masks(views)
            if not fmask_np.any():
                return None
            dev = emb.device
            logits, values = self(emb)
            grades = torch.tensor([it.grades for it in batch], dtype=torch.float32, device=dev)
            levels = torch.arange(1, LEVELS + 1, device=dev, dtype=torch.float32)
            target = (grades[:, :, None] >= levels).float()
            fmask = torch.from_numpy(fmask_np).to(dev)[:, :, None].expand_as(target)
            loss = F.binary_cross_entropy_with_logits(logits[fmask], target[fmask])
            raw = torch.tensor(
                [it.values if len(it.values) == len(HEAD_VALUES) else (math.nan,) * len(HEAD_VALUES) for it in batch],
                dtype=torch.float32,
                device=dev,
            )
            vmask = torch.from_numpy(vmask_np).to(dev) & torch.isfinite(raw)
            if bool(vmask.any()):
                z = (raw - self.get_buffer("value_mean")) / self.get_buffer("value_std")
                loss = loss + F.mse_loss(values[vmask], z[vmask])
            return loss

    return Heads()


def heads_state(heads: torch.nn.Module) -> dict[str, Any]:
    """The heads' weights and statistics as plain lists (the checkpoint's ``extra``)."""
    return {k: v.detach().cpu().tolist() for k, v in heads.state_dict().items()}


def load_heads_state(heads: torch.nn.Module, state: dict[str, Any]) -> None:
    """Restore what :func:`heads_state` saved."""
    import torch

    heads.load_state_dict({k: torch.tensor(v, dtype=torch.float32) for k, v in state.items()})
