"""The held-out evaluation that ends every epoch: view accuracy, clip->report and study->report
recall@1/@5, the top-1 report's grade error against a random report's, and the finding head's AUROC
(:func:`evaluate`), reported as one :class:`EpochMetrics` line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.train.data import ClipItem, TextEncoder, clip_loader, finding_text
from rag.train.findings import view_finding_mask

if TYPE_CHECKING:
    import torch

    from rag.encoders.model import EchoEncoder
    from rag.train.cache import ClipCache

__all__ = ["EpochMetrics", "evaluate"]


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
        loss = "-" if math.isnan(self.train_loss) else f"{self.train_loss:.4f}"  # epoch 0: nothing trained yet
        return (
            f"epoch {self.epoch}: loss={loss} view_acc={self.view_accuracy:.3f} "
            f"clip->report R@1={self.recall_at_1:.3f} R@5={self.recall_at_5:.3f} "
            f"study->report R@1={self.study_recall_at_1:.3f} R@5={self.study_recall_at_5:.3f} "
            f"top-1 grade error={self.finding_error:.2f} (random report {self.finding_error_chance:.2f}) "
            f"finding head AUROC={self.finding_auroc:.3f} "
            f"(held-out: {self.n_val_clips} clips, {self.n_val_studies} studies, {n} reports{chance}; "
            f"{self.seconds:.0f} s)"
        )


def evaluate(
    model: EchoEncoder,
    items: Sequence[ClipItem],
    *,
    batch_size: int = 32,
    workers: int = 0,
    text: TextEncoder | None = None,
    finding_head: Any = None,
    cache: ClipCache | None = None,
) -> dict[str, float]:
    """Held-out view accuracy and clip->report recall@1/@5 (each clip ranks every held-out study's report).

    Also ``finding_error``: the summed grade difference (over :func:`rag.train.findings.finding_names`)
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
    loader = clip_loader(items, model, batch_size, shuffle=False, workers=workers, seed=0, cache=cache)
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


def _finding_head_auroc(head: Any, emb: torch.Tensor, items: Sequence[ClipItem], view_names: Sequence[str]) -> float:
    """Study-level AUROC of the finding head per finding, averaged (see :func:`evaluate`)."""
    import torch

    from rag.core.stats import auroc

    with torch.no_grad():
        prob = head.finding_probability(emb.to(next(head.parameters()).device)).float().cpu().numpy()
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
