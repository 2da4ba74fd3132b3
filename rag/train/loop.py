"""Contrastive training of an encoder on the case store: clips vs reports, clips vs sections, views.

Each batch of clips is scored by the weighted sum of the losses of :mod:`rag.train.losses`: clip <->
report findings InfoNCE with soft finding-affinity targets, clip <-> informed section InfoNCE, the view
head's cross-entropy, the finding head's BCE and report <-> report InfoNCE.

Training clips are randomly re-acquired (gain, gamma, zoom, shift, rotation: :mod:`rag.train.augment`)
unless ``augment`` is off, so that acquisition settings cannot tell the training studies apart.

Patients are split into train and held-out sets (no patient in both: :mod:`rag.train.data`). Every
epoch ends with a line of train loss, held-out view accuracy and held-out clip->report recall@1/@5 (a
hit: a report stating the clip's study's findings ranks within the top k of the held-out reports;
:mod:`rag.train.evaluate`), and a checkpoint; ``resume`` continues from the last checkpoint (weights,
optimiser, epoch and random state).

Text towers with a frozen backbone (the default MiniLM) run the backbone once per distinct text: the
base features are cached for the whole run and only the trainable head sees every batch. A fresh run
first fits the tower's fixed base statistics (MiniLM: the mean embedding it centres on) on the
training split's report texts.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.store import Store
from rag.train.config import TrainConfig
from rag.train.data import (
    ClipItem,
    TextEncoder,
    TrainingError,
    clip_loader,
    finding_text,
    load_items,
    split_by_patient,
)
from rag.train.evaluate import EpochMetrics, evaluate
from rag.train.heads import heads_state, load_heads_state, make_heads
from rag.train.losses import TEXT_POOL, batch_loss
from rag.vocab.sections import FREE_TEXT

if TYPE_CHECKING:
    import torch

    from rag.encoders.model import EchoEncoder
    from rag.train.cache import ClipCache

__all__ = [
    "TEXT_POOL",
    "ClipItem",
    "EpochMetrics",
    "TextEncoder",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "evaluate",
    "finding_text",
    "learning_rate",
    "load_items",
    "recalibrate_batchnorm",
    "split_by_patient",
    "train",
]

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    checkpoint: Path
    sha256: str
    history: list[EpochMetrics] = field(default_factory=list)


def recalibrate_batchnorm(
    model: EchoEncoder,
    items: Sequence[ClipItem],
    *,
    batch_size: int,
    batches: int = 12,
    seed: int = 0,
    cache: ClipCache | None = None,
) -> int:
    """Re-estimate the video tower's BatchNorm statistics over training clips with the final weights.

    Running averages gathered while the weights moved lag behind them; at inference they shift every
    embedding (held-out view accuracy 0.35 with them vs 0.94 after this, on a 30-patient archive).
    This pass resets the statistics and averages them over up to ``batches`` shuffled batches, with
    the weights fixed. Returns the number of BatchNorm layers recalibrated (0: nothing to do).
    """
    import torch
    from torch import nn

    norms = [
        m for m in model.video.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]
    if not norms or not items:
        return 0
    was_training = model.training
    momenta = [m.momentum for m in norms]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the pass
        m.train()
    loader = clip_loader(items, model, batch_size, shuffle=True, workers=0, seed=seed, cache=cache)
    with torch.no_grad():
        for n, (video, _) in enumerate(loader):
            if n >= batches:
                break
            if video.shape[0] > 1:
                model.video_features(video.to(model.device))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.train(was_training)
    return len(norms)


def _check_config(cfg: TrainConfig) -> None:
    """Refuse settings that cannot train, naming the field (an unknown schedule, a negative weight)."""
    learning_rate(cfg, 0.0)
    for name in ("finding_temperature", "text_loss_weight", "finding_loss_weight", "section_loss_weight"):
        if getattr(cfg, name) < 0:
            raise TrainingError(f"{name} must be >= 0, got {getattr(cfg, name)}")
    if cfg.stop_after is not None and cfg.stop_after < 1:
        raise TrainingError(f"stop_after must be >= 1 (an epoch number), got {cfg.stop_after}")


def learning_rate(cfg: TrainConfig, progress: float) -> float:
    """The learning rate at ``progress`` (0 = first step, 1 = end of the last epoch) of the run.

    A function of the position alone, so a resumed run follows the same curve as an uninterrupted one.
    """
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
    raise TrainingError(f"unknown learning-rate schedule '{cfg.schedule}'; use 'cosine' or 'constant'")


def _autocast(cfg: TrainConfig, device: torch.device) -> Any:
    import contextlib

    import torch

    if cfg.precision == "fp32" or (cfg.precision == "auto" and device.type != "cuda"):
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if cfg.precision == "bf16" or device.type != "cuda" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def train(store: Store, media_dir: Path, cfg: TrainConfig, *, log_line: Callable[[str], None] = print) -> TrainResult:
    """Train (or resume training) an encoder on the store's clips and reports; see the module docstring."""
    import torch
    from tqdm import tqdm

    from rag.encoders import create, load_checkpoint, save_checkpoint

    _check_config(cfg)  # before any work
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    device = torch.device(cfg.device)
    cfg.out.mkdir(parents=True, exist_ok=True)
    last = cfg.out / "last.pt"
    start_epoch = 0
    history: list[EpochMetrics] = []
    if cfg.resume and last.is_file():
        model, info = load_checkpoint(last, device=cfg.device)
        if model.spec.name != cfg.encoder:
            raise TrainingError(f"cannot resume: {last} holds '{model.spec.name}', not '{cfg.encoder}'")
        start_epoch = info.epoch
        history = [EpochMetrics(**h) for h in (info.extra or {}).get("history", [])]
        log_line(f"resuming from {last} after epoch {start_epoch}")
    else:
        model = create(cfg.encoder, device=cfg.device)
        info = None
    items = load_items(store, media_dir, model.spec.view_classes)
    if not items:
        raise TrainingError("no stored clip has a report: ingest studies with their reports first")
    cache = None
    if cfg.cache_dir is not None:
        from rag.train.cache import build_clip_cache

        cache = build_clip_cache([(it.clip_id, it.path) for it in items], model.spec.preprocessing, cfg.cache_dir)
        if cache.seconds:
            log_line(f"clip cache: {len(cache.row_of)} clips decoded in {cache.seconds:.0f} s into {cache.path}")
        for clip_id, why in sorted(cache.skipped.items()):
            log_line(f"left out clip {clip_id}: {why}")
        items = [it for it in items if it.clip_id in cache.row_of]
    train_items, val_items = split_by_patient(items, cfg.val_fraction, cfg.seed)
    text = TextEncoder(model)
    if text.cached:
        # every text once, in one fixed order and batching, so a resumed run sees the very same features
        text.base(
            sorted(
                {finding_text(it.report) for it in items}
                | {finding_text(t) for it in items for name, t in it.sections.items() if name != FREE_TEXT}
            )
        )
        if info is None:
            model.text.fit_base_statistics(text.base(sorted({finding_text(it.report) for it in train_items})))
    text_pool = sorted({(finding_text(it.report), it.grades) for it in train_items})
    finding_head = make_heads(model.spec.embed_dim, train_items).to(device)
    if info is not None and (info.extra or {}).get("finding_head"):
        try:
            load_heads_state(finding_head, info.extra["finding_head"])
        except RuntimeError as e:
            raise TrainingError(f"cannot resume: the heads saved in {last} do not fit this version ({e})") from None
    params = [p for p in model.parameters() if p.requires_grad] + list(finding_head.parameters())
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if info is not None and info.optimizer:
        optimizer.load_state_dict(info.optimizer)
        rng_state = (info.extra or {}).get("torch_rng")
        if rng_state is not None:
            torch.set_rng_state(torch.tensor(rng_state, dtype=torch.uint8))
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and cfg.precision in ("auto", "fp16"))
    if start_epoch == 0:
        m = evaluate(model, val_items, batch_size=cfg.batch_size, text=text, finding_head=finding_head, cache=cache)
        base = EpochMetrics(
            0,
            float("nan"),
            m["view_accuracy"],
            m["recall_at_1"],
            m["recall_at_5"],
            m["study_recall_at_1"],
            m["study_recall_at_5"],
            len(val_items),
            int(m.get("n_studies", 0)),
            0.0,
            int(m.get("n_reports", 0)),
            m["finding_error"],
            m["finding_error_chance"],
            m["finding_auroc"],
        )
        history.append(base)
        log_line(base.line() + "  [untrained]")
    sha = ""
    last_epoch = cfg.epochs if cfg.stop_after is None else min(cfg.epochs, cfg.stop_after)
    for epoch in range(start_epoch + 1, last_epoch + 1):
        import time

        t0 = time.perf_counter()
        model.train()
        rng = random.Random(cfg.seed * 1000 + epoch)
        loader = clip_loader(
            train_items,
            model,
            cfg.batch_size,
            shuffle=True,
            workers=cfg.workers,
            seed=cfg.seed + epoch,
            augment=cfg.augment,
            cache=cache,
        )
        total, n = 0.0, 0
        steps = len(loader)
        bar = tqdm(loader, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch", disable=not cfg.progress, leave=False)
        for step, (video, idx) in enumerate(bar):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(cfg, (epoch - 1 + step / steps) / cfg.epochs)
            if len(idx) < 2:  # batch norm needs two clips; a last batch of one is left for the next epoch's order
                continue
            batch = [train_items[int(i)] for i in idx]
            with _autocast(cfg, device):
                loss = batch_loss(model, text, video.to(device), batch, cfg, rng, text_pool, finding_head)
            if not math.isfinite(float(loss.detach())):
                raise TrainingError(
                    f"loss became {float(loss.detach())} at epoch {epoch}; lower the learning rate (lr={cfg.lr})"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
            scaler.step(optimizer)
            scaler.update()
            total += float(loss.detach()) * len(batch)
            n += len(batch)
            bar.set_postfix(loss=f"{total / max(n, 1):.3f}")
        bar.close()
        recalibrate_batchnorm(model, train_items, batch_size=cfg.batch_size, seed=cfg.seed + epoch, cache=cache)
        m = evaluate(model, val_items, batch_size=cfg.batch_size, text=text, finding_head=finding_head, cache=cache)
        metrics = EpochMetrics(
            epoch,
            total / max(n, 1),
            m["view_accuracy"],
            m["recall_at_1"],
            m["recall_at_5"],
            m["study_recall_at_1"],
            m["study_recall_at_5"],
            len(val_items),
            int(m.get("n_studies", 0)),
            time.perf_counter() - t0,
            int(m.get("n_reports", 0)),
            m["finding_error"],
            m["finding_error_chance"],
            m["finding_auroc"],
        )
        history.append(metrics)
        log_line(metrics.line())
        extra = {
            "history": [asdict(h) for h in history],
            "torch_rng": torch.get_rng_state().tolist(),
            "val_patients": sorted({i.patient for i in val_items}),
            "finding_head": heads_state(finding_head),
        }
        save_checkpoint(
            model, cfg.out / f"epoch-{epoch:03d}.pt", epoch=epoch, optimizer=optimizer.state_dict(), extra=extra
        )
        sha = save_checkpoint(model, last, epoch=epoch, optimizer=optimizer.state_dict(), extra=extra)
    if not sha and last.is_file():
        from rag.encoders import file_sha256

        sha = file_sha256(last)
    return TrainResult(checkpoint=last, sha256=sha, history=history)
