"""Contrastive training of an encoder on the case store: clips vs reports, clips vs sections, views.

Per batch of clips:

- InfoNCE (CLIP loss, both directions) between each clip and its study's report findings (the
  anatomical sections, Free Text left out, numbers masked: :func:`finding_text`). The targets are
  soft (:mod:`rag.encoders.findings`): every report in the batch whose finding grades agree with the
  clip's study's on the findings its view shows is a positive, less agreeing ones get less weight
  (``finding_temperature``; 0 = only texts identical to the clip's own report are positives);
- InfoNCE between each clip and the text of one report section its view informs
  (``rag.encoders.view_sections``), where the clip's view is known;
- cross-entropy of the view head on clips whose view label is known;
- binary cross-entropy of a linear finding head on the clip embedding (``finding_loss_weight``): for
  each finding its view shows well, is the report's grade >= 1? The head exists only for training (its
  weights ride in the checkpoint's ``extra`` for resume); it makes the embedding itself carry findings;
- InfoNCE among report texts (``text_loss_weight``), with the same finding affinities as targets: it
  arranges the text space by findings rather than by wording (the frozen MiniLM space alone puts a
  report's nearest neighbour only a little closer in findings than a random report). With a frozen,
  cached text backbone it spans up to ``TEXT_POOL`` training reports per step, else the batch's.

Training clips are randomly re-acquired (gain, gamma, zoom, shift, rotation: :mod:`rag.encoders.augment`)
unless ``augment`` is off, so that acquisition settings cannot tell the training studies apart.

Patients are split into train and held-out sets (no patient in both). Every epoch ends with a line of
train loss, held-out view accuracy and held-out clip->report recall@1/@5 (a hit: a report stating the
clip's study's findings ranks within the top k of the held-out reports), and a checkpoint; ``resume``
continues from the last checkpoint (weights, optimiser, epoch and random state).

Text towers with a frozen backbone (the default MiniLM) run the backbone once per distinct text: the
base features are cached for the whole run and only the trainable head sees every batch. A fresh run
first fits the tower's fixed base statistics (MiniLM: the mean embedding it centres on) on the
training split's report texts.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from rag.encoders.findings import finding_affinity, finding_names, report_grades, view_finding_mask
from rag.encoders.view_sections import informed_sections
from rag.errors import RagError
from rag.ingest.clipfile import read_clip
from rag.ingest.sections import FREE_TEXT
from rag.store import Clip, Patient, Report, Series, Store, Study

if TYPE_CHECKING:
    import torch

    from rag.encoders.model import EchoEncoder

log = logging.getLogger(__name__)


class TrainingError(RagError):
    """Training cannot start or continue (no data, bad split, unusable checkpoint)."""


@dataclass(frozen=True)
class ClipItem:
    """One training example: a stored clip, its study's report and sections, and its view if known."""

    clip_id: int
    path: Path
    study_id: int
    patient: str
    view: int  # index into the encoder's view classes, -1 when unknown
    report: str  # the report's findings: its anatomical sections as "Name: text" lines (Free Text left out)
    sections: dict[str, str]
    grades: tuple[int, ...] = ()  # the report's finding grades (rag.encoders.findings.report_grades)


@dataclass
class TrainConfig:
    encoder: str = "echo-video-tiny"
    out: Path = Path("checkpoints")
    epochs: int = 5
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.2
    seed: int = 0
    device: str = "cpu"
    workers: int = 1
    view_loss_weight: float = 1.0
    section_loss_weight: float = 0.5
    finding_temperature: float = 0.5  # soft clip->report targets; 0: exact report texts only
    text_loss_weight: float = 0.5  # report<->report InfoNCE, finding-affinity targets at T = finding_temperature or 0.5
    finding_loss_weight: float = 2.0  # finding head on the clip embedding, view-shown findings only (0: off)
    schedule: str = "cosine"  # learning rate over the run: "cosine" (decays to 0 at the last step) or "constant"
    stop_after: int | None = None  # end after this epoch (resume later to finish the same run and schedule)
    augment: bool = True  # random gain/gamma/zoom/shift/rotation of training clips
    resume: bool = False
    precision: str = "auto"  # auto: fp16 autocast on CUDA, fp32 on CPU; or "fp32" / "bf16"
    progress: bool = True


@dataclass
class EpochMetrics:
    epoch: int
    train_loss: float
    view_accuracy: float
    recall_at_1: float
    recall_at_5: float
    study_recall_at_1: float
    study_recall_at_5: float
    n_val_clips: int
    n_val_studies: int
    seconds: float
    n_val_reports: int = 0  # distinct findings texts the held-out clips rank
    finding_error: float = float("nan")  # summed |grade difference| between a clip's report and its top-1 report
    finding_error_chance: float = float("nan")  # the same for a report drawn at random
    finding_auroc: float = float("nan")  # the finding head's mean held-out study-level AUROC over findings

    def line(self) -> str:
        n = self.n_val_reports
        chance = f", chance R@1={1 / n:.3f} R@5={min(5, n) / n:.3f}" if n else ""
        return (
            f"epoch {self.epoch}: loss={self.train_loss:.4f} view_acc={self.view_accuracy:.3f} "
            f"clip->report R@1={self.recall_at_1:.3f} R@5={self.recall_at_5:.3f} "
            f"study->report R@1={self.study_recall_at_1:.3f} R@5={self.study_recall_at_5:.3f} "
            f"top-1 grade error={self.finding_error:.2f} (random report {self.finding_error_chance:.2f}) "
            f"finding head AUROC={self.finding_auroc:.3f} "
            f"(held-out: {self.n_val_clips} clips, {self.n_val_studies} studies, {n} reports{chance}; "
            f"{self.seconds:.0f} s)"
        )


@dataclass
class TrainResult:
    checkpoint: Path
    sha256: str
    history: list[EpochMetrics] = field(default_factory=list)


def load_items(store: Store, media_dir: Path, view_classes: Sequence[str]) -> list[ClipItem]:
    """Every stored clip whose study has a report, with its report text, sections and view index."""
    index = {v: i for i, v in enumerate(view_classes)}
    items: list[ClipItem] = []
    with store.session() as s:
        reports: dict[int, Report] = {}
        for r in s.scalars(select(Report).order_by(Report.id)):
            reports.setdefault(r.study_id, r)
        rows = s.execute(
            select(Clip.id, Clip.path, Clip.view_label, Study.id, Patient.pseudonym)
            .join(Series, Clip.series_id == Series.id)
            .join(Study, Series.study_id == Study.id)
            .join(Patient, Study.patient_id == Patient.id)
            .order_by(Clip.id)
        ).all()
        for clip_id, path, view, study_id, pseudonym in rows:
            report = reports.get(study_id)
            if report is None:
                continue
            sections = {x.name: x.text for x in report.sections}
            # the findings, not the header/indication/comparison free text
            findings = "\n".join(f"{name}: {text}" for name, text in sections.items() if name != FREE_TEXT)
            items.append(
                ClipItem(
                    clip_id,
                    media_dir / path,
                    study_id,
                    pseudonym,
                    index.get(view or "", -1),
                    findings or report.text,
                    sections,
                    report_grades(sections),
                )
            )
    return items


_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def finding_text(text: str) -> str:
    """The text with every number replaced by ``#``: what the contrastive losses compare.

    Reports stating the same findings then share one text (a positive for all their clips) instead of
    differing only in a stranger's exact numbers, which a sentence encoder does not read well anyway;
    measurements are predicted by the neighbour vote, not by the text embedding.
    """
    return _NUMBER.sub("#", text)


def split_by_patient(
    items: Sequence[ClipItem], val_fraction: float, seed: int
) -> tuple[list[ClipItem], list[ClipItem]]:
    """A deterministic patient-level split: no patient's clips are on both sides."""
    if not 0.0 < val_fraction < 1.0:
        raise TrainingError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    patients = sorted({i.patient for i in items})
    if len(patients) < 2:
        raise TrainingError(
            f"need clips with reports from at least 2 patients to hold some out, found {len(patients)}; "
            "ingest more studies (e.g. `rag simulate --patients 20` then `rag ingest`)"
        )

    def bucket(p: str) -> float:
        return int(hashlib.sha256(f"{seed}:{p}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF

    held = sorted(patients, key=bucket)[: max(1, round(len(patients) * val_fraction))]
    held_set = set(held)
    return [i for i in items if i.patient not in held_set], [i for i in items if i.patient in held_set]


class _ClipDataset:
    """Map-style dataset: (video tensor, item index). Loads and preprocesses in worker processes."""

    def __init__(self, items: Sequence[ClipItem], preprocessing: Any, *, augment: bool = False) -> None:
        self.items = list(items)
        self.pre = preprocessing
        self.augment = augment

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from rag.encoders.preprocess import clip_to_tensor

        pixels, _ = read_clip(self.items[i].path)
        x = clip_to_tensor(pixels, self.pre)
        if self.augment:
            from rag.encoders.augment import ClipAugment

            x = ClipAugment()(x, self.pre)
        return x, i


def _seed_worker(worker_id: int) -> None:
    import torch

    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


class TextEncoder:
    """``encode_text`` for training, caching frozen base features per distinct text."""

    def __init__(self, model: EchoEncoder, *, batch_size: int = 64) -> None:
        self.model = model
        self.batch_size = batch_size
        self.cache: dict[str, torch.Tensor] = {}

    @property
    def cached(self) -> bool:
        return bool(self.model.text.frozen_base)

    def base(self, texts: Sequence[str]) -> torch.Tensor:
        """Frozen base features of ``texts`` (computed once per distinct text), on the model's device."""
        import torch

        todo = sorted({t for t in texts if t not in self.cache})
        with torch.no_grad():
            for i in range(0, len(todo), self.batch_size):
                chunk = todo[i : i + self.batch_size]
                feats = self.model.text.base_features(self.model.tokenize(chunk)).float()
                self.cache.update(zip(chunk, feats, strict=True))
        return torch.stack([self.cache[t] for t in texts]).to(self.model.device)

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """(B, D) L2-normalised text embeddings, as ``EchoEncoder.encode_text`` gives them."""
        import torch.nn.functional as F

        if not self.cached or not texts:
            return self.model.encode_text(texts)
        return F.normalize(self.model.text.head(self.base(texts)).float(), dim=-1)


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


def _finding_loss(
    head: torch.nn.Module, emb: torch.Tensor, batch: Sequence[ClipItem], view_names: Sequence[str]
) -> torch.Tensor | None:
    """BCE of ``head(emb)`` against grade >= 1, over the findings each clip's view shows well."""
    import torch
    import torch.nn.functional as F

    known = [i for i, it in enumerate(batch) if it.view >= 0]
    if not known:
        return None
    mask = torch.tensor(
        [view_finding_mask(view_names[batch[i].view], threshold=1.0) for i in known],
        dtype=torch.bool,
        device=emb.device,
    )
    if not bool(mask.any()):
        return None
    target = torch.tensor([[g > 0 for g in batch[i].grades] for i in known], dtype=torch.float32, device=emb.device)
    logits = head(emb[known].float())
    return F.binary_cross_entropy_with_logits(logits[mask], target[mask])


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


def _batch_loss(
    model: EchoEncoder,
    text: TextEncoder,
    video: torch.Tensor,
    batch: Sequence[ClipItem],
    cfg: TrainConfig,
    rng: random.Random,
    text_pool: Sequence[tuple[str, tuple[int, ...]]] = (),
    finding_head: torch.nn.Module | None = None,
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
        finding_loss = _finding_loss(finding_head, emb, batch, model.spec.view_classes)
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


def recalibrate_batchnorm(
    model: EchoEncoder, items: Sequence[ClipItem], *, batch_size: int, batches: int = 12, seed: int = 0
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
    loader = _loader(items, model, batch_size, shuffle=True, workers=0, seed=seed)
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


def evaluate(
    model: EchoEncoder,
    items: Sequence[ClipItem],
    *,
    batch_size: int = 32,
    workers: int = 0,
    text: TextEncoder | None = None,
    finding_head: torch.nn.Module | None = None,
) -> dict[str, float]:
    """Held-out view accuracy and clip->report recall@1/@5 (each clip ranks every held-out study's report).

    Also ``finding_error``: the summed grade difference (over :func:`rag.encoders.findings.finding_names`)
    between a clip's own report and the report it ranks first, and ``finding_error_chance``, the mean
    of the same over all the held-out reports (what a random ranking scores). With ``finding_head``,
    ``finding_auroc``: per finding, each held-out study's score is the head's mean probability over its
    clips whose view shows the finding well; the AUROC of that score for grade >= 1, averaged over the
    findings where the held-out studies hold both classes.
    """
    import torch

    if not items:
        nan = float("nan")
        return {
            k: nan
            for k in (
                "view_accuracy",
                "recall_at_1",
                "recall_at_5",
                "study_recall_at_1",
                "study_recall_at_5",
                "finding_error",
                "finding_error_chance",
                "finding_auroc",
            )
        }
    model.eval()
    loader = _loader(items, model, batch_size, shuffle=False, workers=workers, seed=0)
    embs, preds = [], []
    with torch.no_grad():
        for video, _ in loader:
            e, logits = model.video_features(video.to(model.device))
            embs.append(e.float().cpu())
            preds.append(logits.argmax(dim=1).cpu())
        studies = sorted({it.study_id for it in items})
        reports = sorted({finding_text(it.report) for it in items})
        enc = text or TextEncoder(model)
        report_emb = torch.cat(
            [enc.encode_text(reports[i : i + batch_size]).float().cpu() for i in range(0, len(reports), batch_size)]
        )
    emb = torch.cat(embs)
    pred = torch.cat(preds)
    study_of = torch.tensor([studies.index(it.study_id) for it in items])
    truth = torch.tensor([reports.index(finding_text(it.report)) for it in items])
    ranks = (emb @ report_emb.t()).argsort(dim=1, descending=True)
    hit_rank = (ranks == truth[:, None]).float().argmax(dim=1)
    views = torch.tensor([it.view for it in items])
    known = views >= 0
    acc = float((pred[known] == views[known]).float().mean()) if bool(known.any()) else float("nan")
    # study level: the mean of a study's clip embeddings ranks the held-out reports
    study_emb = torch.stack([emb[study_of == j].mean(dim=0) for j in range(len(studies))])
    study_emb = torch.nn.functional.normalize(study_emb, dim=1)
    study_truth = torch.stack([truth[study_of == j][0] for j in range(len(studies))])
    study_rank = (study_emb @ report_emb.t()).argsort(dim=1, descending=True)
    study_hit = (study_rank == study_truth[:, None]).float().argmax(dim=1)
    grades_of = {finding_text(it.report): it.grades for it in items}
    report_grades_t = torch.tensor([grades_of[r] for r in reports], dtype=torch.float32)
    distance = (report_grades_t[truth][:, None, :] - report_grades_t[None, :, :]).abs().sum(dim=2)
    finding_auroc = (
        _finding_head_auroc(finding_head, emb, items, model.spec.view_classes)
        if finding_head is not None
        else float("nan")
    )
    return {
        "finding_auroc": finding_auroc,
        "finding_error": float(distance.gather(1, ranks[:, :1]).mean()),
        "finding_error_chance": float(distance.mean()),
        "view_accuracy": acc,
        "recall_at_1": float((hit_rank < 1).float().mean()),
        "recall_at_5": float((hit_rank < 5).float().mean()),
        "study_recall_at_1": float((study_hit < 1).float().mean()),
        "study_recall_at_5": float((study_hit < 5).float().mean()),
        "n_studies": float(len(studies)),
        "n_reports": float(len(reports)),
    }


def _finding_head_auroc(
    head: torch.nn.Module, emb: torch.Tensor, items: Sequence[ClipItem], view_names: Sequence[str]
) -> float:
    """Study-level AUROC of the finding head per finding, averaged (see :func:`evaluate`)."""
    import torch

    from rag.retrieve.evaluate import auroc

    with torch.no_grad():
        prob = torch.sigmoid(head(emb.to(next(head.parameters()).device))).float().cpu().numpy()
    none = (False,) * prob.shape[1]  # unknown view: no finding counted as shown
    masks = [view_finding_mask(view_names[it.view], threshold=1.0) if it.view >= 0 else none for it in items]
    clips_of: dict[int, list[int]] = {}
    for i, it in enumerate(items):
        clips_of.setdefault(it.study_id, []).append(i)
    grades = {it.study_id: it.grades for it in items}
    values = []
    for k in range(prob.shape[1]):
        scores, labels = [], []
        for study, clips in sorted(clips_of.items()):
            rows = [i for i in clips if masks[i][k]]
            if rows:
                scores.append(float(prob[rows, k].mean()))
                labels.append(int(grades[study][k] > 0))
        value = auroc(scores, labels) if scores else float("nan")
        if not math.isnan(value):
            values.append(value)
    return float(np.mean(values)) if values else float("nan")


def _loader(
    items: Sequence[ClipItem],
    model: EchoEncoder,
    batch_size: int,
    *,
    shuffle: bool,
    workers: int,
    seed: int,
    augment: bool = False,
) -> Any:
    import torch
    from torch.utils.data import DataLoader

    g = torch.Generator()
    g.manual_seed(seed)
    return DataLoader(
        _ClipDataset(items, model.spec.preprocessing, augment=augment),  # type: ignore[arg-type]
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        worker_init_fn=_seed_worker if workers else None,
        generator=g,
        persistent_workers=False,
    )


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
    finding_head = torch.nn.Linear(model.spec.embed_dim, len(finding_names())).to(device)
    if info is not None and (info.extra or {}).get("finding_head"):
        finding_head.load_state_dict(
            {k: torch.tensor(v, dtype=torch.float32) for k, v in info.extra["finding_head"].items()}
        )
    params = [p for p in model.parameters() if p.requires_grad] + list(finding_head.parameters())
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if info is not None and info.optimizer:
        optimizer.load_state_dict(info.optimizer)
        rng_state = (info.extra or {}).get("torch_rng")
        if rng_state is not None:
            torch.set_rng_state(torch.tensor(rng_state, dtype=torch.uint8))
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and cfg.precision in ("auto", "fp16"))
    if start_epoch == 0:
        m = evaluate(model, val_items, batch_size=cfg.batch_size, text=text, finding_head=finding_head)
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
        loader = _loader(
            train_items,
            model,
            cfg.batch_size,
            shuffle=True,
            workers=cfg.workers,
            seed=cfg.seed + epoch,
            augment=cfg.augment,
        )
        total, n = 0.0, 0
        steps = len(loader)
        bar = tqdm(loader, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch", disable=not cfg.progress, leave=False)
        for step, (video, idx) in enumerate(bar):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(cfg, (epoch - 1 + step / steps) / cfg.epochs)
            batch = [train_items[int(i)] for i in idx]
            with _autocast(cfg, device):
                loss = _batch_loss(model, text, video.to(device), batch, cfg, rng, text_pool, finding_head)
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
        recalibrate_batchnorm(model, train_items, batch_size=cfg.batch_size, seed=cfg.seed + epoch)
        m = evaluate(model, val_items, batch_size=cfg.batch_size, text=text, finding_head=finding_head)
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
            "finding_head": {k: v.detach().cpu().tolist() for k, v in finding_head.state_dict().items()},
        }
        save_checkpoint(
            model, cfg.out / f"epoch-{epoch:03d}.pt", epoch=epoch, optimizer=optimizer.state_dict(), extra=extra
        )
        sha = save_checkpoint(model, last, epoch=epoch, optimizer=optimizer.state_dict(), extra=extra)
    if not sha and last.is_file():
        from rag.encoders import file_sha256

        sha = file_sha256(last)
    return TrainResult(checkpoint=last, sha256=sha, history=history)
