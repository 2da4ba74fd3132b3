"""The training losses of one batch of clips (:func:`batch_loss`), weighted by :class:`~rag.train.loop.TrainConfig`:

- InfoNCE (CLIP loss, both directions) between each clip and its study's report findings (the
  anatomical sections, Free Text left out, numbers masked: :func:`~rag.train.data.finding_text`). The
  targets are soft (:mod:`rag.train.findings`): every report in the batch whose finding grades agree
  with the clip's study's on the findings its view shows is a positive, less agreeing ones get less
  weight (``finding_temperature``; 0 = only texts identical to the clip's own report are positives);
- InfoNCE between each clip and the text of one report section its view informs
  (``rag.vocab.view_sections``), where the clip's view is known;
- cross-entropy of the view head on clips whose view label is known;
- the supervised heads on the clip embedding (``finding_loss_weight``, :mod:`rag.train.heads`): ordinal
  BCE of each finding's grade and MSE of the measurements the clip's view shows; they make the
  embedding itself carry findings;
- InfoNCE among report texts (``text_loss_weight``), with the same finding affinities as targets: it
  arranges the text space by findings rather than by wording (the frozen MiniLM space alone puts a
  report's nearest neighbour only a little closer in findings than a random report). With a frozen,
  cached text backbone it spans up to ``TEXT_POOL`` training reports per step, else the batch's.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rag.train.data import ClipItem, TextEncoder, finding_text
from rag.train.findings import finding_affinity, view_finding_mask
from rag.vocab.view_sections import informed_sections

if TYPE_CHECKING:
    import torch

    from rag.encoders.model import EchoEncoder
    from rag.train.config import TrainConfig

__all__ = ["TEXT_POOL", "batch_loss"]


def _multi_positive_nce(sim: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE with targets ``positive[i, j]`` >= 0 (rows: clips, cols: texts), each row and
    column normalised to sum 1: a boolean matrix marks matching pairs, a float one weighs them."""
    import torch.nn.functional as F

    pos = positive.float()
    row_targets = pos / pos.sum(dim=1, keepdim=True).clamp(min=1)
    col_targets = (pos / pos.sum(dim=0, keepdim=True).clamp(min=1)).t()
    loss_rows = -(row_targets * F.log_softmax(sim, dim=1)).sum(dim=1).mean()
    loss_cols = -(col_targets * F.log_softmax(sim.t(), dim=1)).sum(dim=1).mean()
    return (loss_rows + loss_cols) / 2


TEXT_POOL = 256
"""At most this many training reports enter the report<->report loss per step."""


def _text_loss(
    model: EchoEncoder, text: TextEncoder, pool: Sequence[tuple[str, tuple[int, ...]]], temperature: float
) -> torch.Tensor | None:
    """InfoNCE among ``pool``'s (text, grades): each text's targets are the others, by finding affinity."""
    import torch

    if len(pool) < 2 or temperature <= 0:
        return None
    texts = [t for t, _ in pool]
    grades = [g for _, g in pool]
    emb = text.encode_text(texts)
    everything = [(True,) * len(grades[0])] * len(grades)
    affinity = torch.from_numpy(finding_affinity(grades, everything, grades, temperature)).to(emb.device)
    affinity.fill_diagonal_(0.0)
    sim = model.logit_scale.exp().clamp(max=100) * emb @ emb.t()
    sim = sim.masked_fill(torch.eye(len(texts), dtype=torch.bool, device=emb.device), -1e4)  # not itself
    return _multi_positive_nce(sim, affinity)


def _report_loss(
    model: EchoEncoder, text: TextEncoder, emb: torch.Tensor, batch: Sequence[ClipItem], cfg: TrainConfig
) -> torch.Tensor:
    """Clip <-> report InfoNCE, one column per distinct findings text, soft targets by finding affinity."""
    import torch

    reports = sorted({finding_text(it.report) for it in batch})
    col = {t: j for j, t in enumerate(reports)}
    text_emb = text.encode_text(reports)
    view_names = model.spec.view_classes
    if cfg.finding_temperature > 0:
        grades_of_text = {finding_text(it.report): it.grades for it in batch}
        affinity = finding_affinity(
            [it.grades for it in batch],
            [view_finding_mask(view_names[it.view] if it.view >= 0 else None) for it in batch],
            [grades_of_text[t] for t in reports],
            cfg.finding_temperature,
        )
        positive = torch.from_numpy(affinity).to(emb.device)
    else:
        positive = torch.zeros(len(batch), len(reports), device=emb.device)
    for i, it in enumerate(batch):
        positive[i, col[finding_text(it.report)]] = 1.0
    return _multi_positive_nce(model.logit_scale.exp().clamp(max=100) * emb @ text_emb.t(), positive)


def _section_loss(
    model: EchoEncoder, text: TextEncoder, emb: torch.Tensor, batch: Sequence[ClipItem], rng: random.Random
) -> torch.Tensor | None:
    """Clip <-> the text of one report section its view informs (drawn with ``rng``), for known views."""
    import torch

    view_names = model.spec.view_classes
    pairs: list[tuple[int, str]] = []
    for i, it in enumerate(batch):
        if it.view < 0:
            continue
        options = [it.sections[s] for s in informed_sections(view_names[it.view]) if s in it.sections]
        if options:
            pairs.append((i, finding_text(rng.choice(options))))
    if len(pairs) < 2:
        return None
    section_texts = sorted({t for _, t in pairs})
    tcol = {t: j for j, t in enumerate(section_texts)}
    sec_emb = text.encode_text(section_texts)
    rows = torch.tensor([i for i, _ in pairs], device=emb.device)
    positive = torch.zeros(len(pairs), len(section_texts), dtype=torch.bool, device=emb.device)
    for r, (_, t) in enumerate(pairs):
        positive[r, tcol[t]] = True
    return _multi_positive_nce(model.logit_scale.exp().clamp(max=100) * emb[rows] @ sec_emb.t(), positive)


def batch_loss(
    model: EchoEncoder,
    text: TextEncoder,
    video: torch.Tensor,
    batch: Sequence[ClipItem],
    cfg: TrainConfig,
    rng: random.Random,
    text_pool: Sequence[tuple[str, tuple[int, ...]]] = (),
    finding_head: Any = None,
) -> torch.Tensor:
    """The weighted sum of the losses in the module docstring for one batch."""
    import torch
    import torch.nn.functional as F

    emb, view_logits = model.video_features(video)
    loss = _report_loss(model, text, emb, batch, cfg)
    if cfg.section_loss_weight > 0:
        section_loss = _section_loss(model, text, emb, batch, rng)
        if section_loss is not None:
            loss = loss + cfg.section_loss_weight * section_loss
    if finding_head is not None and cfg.finding_loss_weight > 0:
        finding_loss = finding_head.loss(emb, batch, model.spec.view_classes)
        if finding_loss is not None:
            loss = loss + cfg.finding_loss_weight * finding_loss
    if cfg.text_loss_weight > 0:
        pool = list(text_pool) if text.cached else sorted({(finding_text(it.report), it.grades) for it in batch})
        if len(pool) > TEXT_POOL:
            pool = rng.sample(pool, TEXT_POOL)
        text_loss = _text_loss(model, text, pool, cfg.finding_temperature or 0.5)
        if text_loss is not None:
            loss = loss + cfg.text_loss_weight * text_loss
    labels = torch.tensor([it.view for it in batch], device=emb.device)
    known = labels >= 0
    if bool(known.any()) and cfg.view_loss_weight > 0:
        loss = loss + cfg.view_loss_weight * F.cross_entropy(view_logits[known].float(), labels[known])
    return loss
