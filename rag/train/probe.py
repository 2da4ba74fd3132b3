"""The ceiling of each finding: a supervised probe trained directly on a simulated archive's labels.

The retrieval encoder learns findings only through report text and neighbours; this probe says what
the pixels allow. One small CNN reads every clip (frames subsampled, resized, kept uint8 in a
memory-mapped cache so an epoch decodes nothing); its frame features keep a coarse grid of where
things are (a jet is in the atrium, an effusion around the ventricle) and are pooled over time as mean
and spread (motion); with the clip's true view it predicts, for every finding whose section that view
informs (``rag.vocab.view_sections``, weight >= 0.5), the ordinal grade (P(grade >= 1, 2, 3)) and
the LVEF and PASP. It trains on some patients and is scored on the others, per study: each finding's
probability is the mean over the study's clips of views that inform it. Labels come from the
archive's truth (``truth/studies.csv``), never from the report text.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from rag.core.errors import RagError
from rag.core.stats import auroc, auroc_interval
from rag.simulate.labels import TRUTH_GRADES, TRUTH_VALUES
from rag.store import Clip, Series, Store, Study
from rag.vocab.findings import PHENOTYPES
from rag.vocab.view_sections import informed_sections
from rag.vocab.views import COARSE_VIEWS

if TYPE_CHECKING:
    import torch

__all__ = ["ProbeConfig", "ProbeData", "ProbeResult", "build_probe_data", "train_probe"]

log = logging.getLogger(__name__)

FINDINGS: tuple[str, ...] = tuple(n for n in TRUTH_GRADES if PHENOTYPES[n].kind == "finding")
VALUES: tuple[str, ...] = ("lvef", "pasp")


class ProbeError(RagError):
    """The probe cannot run: no clip of the archive is stored, or a split leaves one side empty."""


@dataclass(frozen=True)
class ProbeConfig:
    """How the probe is trained (sizes chosen for 2 CPU cores)."""

    frames: int = 8
    size: int = 64
    epochs: int = 8
    batch_size: int = 32
    lr: float = 2e-3
    test_fraction: float = 0.3
    seed: int = 0
    threads: int = 2


@dataclass
class ProbeData:
    """Clips as a uint8 array (n, frames, size, size, 3) with their study, patient, true view and labels."""

    pixels: np.ndarray
    clip_ids: np.ndarray
    study: np.ndarray
    patient: np.ndarray
    view: np.ndarray  # index into COARSE_VIEWS
    grades: np.ndarray  # (n, len(FINDINGS)) int, the study's truth
    values: np.ndarray  # (n, len(VALUES)) float, the study's truth


def _view_masks() -> tuple[np.ndarray, np.ndarray]:
    """(views, findings) and (views, values) bool: which findings and values a view shows."""
    findings = np.zeros((len(COARSE_VIEWS), len(FINDINGS)), bool)
    values = np.zeros((len(COARSE_VIEWS), len(VALUES)), bool)
    for v, view in enumerate(COARSE_VIEWS):
        shown = set(informed_sections(view, threshold=0.5))
        findings[v] = [PHENOTYPES[n].section in shown for n in FINDINGS]
        values[v] = [PHENOTYPES[n].section in shown for n in VALUES]
    return findings, values


def build_probe_data(
    store: Store, media_dir: Path, archive: Path, pseudonym_key: bytes, cache: Path, config: ProbeConfig
) -> ProbeData:
    """Every stored cine of the archive, subsampled and resized once into ``cache`` (reused when present).

    Raises:
        ProbeError: no stored clip matches the archive's truth.
    """
    import cv2

    from rag.core.clipfile import read_clip
    from rag.ingest.deid import Pseudonymizer
    from rag.simulate.archive import read_truth
    from rag.train.truth import stored_truth

    truth = stored_truth(store, archive, pseudonym_key)
    clip_rows, _ = read_truth(archive)
    pz = Pseudonymizer(pseudonym_key)
    true_view = {pz.uid(r["sop_uid"]): r["view"] for r in clip_rows if r.get("kind") == "cine"}
    with store.session() as s:
        rows = s.execute(
            select(Clip.id, Clip.path, Clip.instance_uid_hash, Study.id, Study.patient_id)
            .join(Series, Clip.series_id == Series.id)
            .join(Study, Series.study_id == Study.id)
            .order_by(Clip.id)
        ).all()
    rows = [r for r in rows if int(r[3]) in truth and r[2] in true_view]
    if not rows:
        raise ProbeError(f"no stored cine matches the truth of {archive}; ingest it with the same pseudonym key")
    shape = (len(rows), config.frames, config.size, config.size, 3)
    name = f"probe-{len(rows)}x{config.frames}x{config.size}.npy"
    path = cache / name
    cache.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        pixels = np.load(path, mmap_mode="r")
    else:
        started = time.perf_counter()
        tmp = path.with_suffix(".tmp.npy")
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        for i, (_, rel, *_rest) in enumerate(rows):
            clip, _meta = read_clip(media_dir / rel)
            picks = np.linspace(0, len(clip) - 1, config.frames).round().astype(int)
            for j, k in enumerate(picks):
                frame = cv2.resize(clip[k], (config.size, config.size), interpolation=cv2.INTER_AREA)
                out[i, j] = frame[..., None] if frame.ndim == 2 else frame
        out.flush()
        del out
        tmp.replace(path)
        pixels = np.load(path, mmap_mode="r")
        log.info("probe cache: %d clips in %.0f s", len(rows), time.perf_counter() - started)
    studies = np.array([int(r[3]) for r in rows], np.int64)
    return ProbeData(
        pixels=pixels,
        clip_ids=np.array([int(r[0]) for r in rows], np.int64),
        study=studies,
        patient=np.array([int(r[4]) for r in rows], np.int64),
        view=np.array([COARSE_VIEWS.index(true_view[r[2]]) for r in rows], np.int64),
        grades=np.array([[TRUTH_GRADES[n](truth[s]) for n in FINDINGS] for s in studies], np.int64),
        values=np.array([[TRUTH_VALUES[n](truth[s]) for n in VALUES] for s in studies], np.float64),
    )


def _net(n_outputs: int) -> torch.nn.Module:
    import torch
    from torch import nn

    class ProbeNet(nn.Module):
        """Frame CNN (4 stride-2 blocks, a 4x4 grid kept), mean and spread over frames, view one-hot, heads."""

        def __init__(self) -> None:
            super().__init__()
            widths = (3, 16, 32, 64, 96)
            blocks: list[nn.Module] = []
            for a, b in itertools.pairwise(widths):
                blocks += [nn.Conv2d(a, b, 3, stride=2, padding=1), nn.BatchNorm2d(b), nn.ReLU(inplace=True)]
            self.frames = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(4))
            self.head = nn.Sequential(
                nn.Linear(2 * 96 * 16 + len(COARSE_VIEWS), 256), nn.ReLU(inplace=True), nn.Dropout(0.2)
            )
            self.out = nn.Linear(256 + len(COARSE_VIEWS), n_outputs)

        def forward(self, x: torch.Tensor, view: torch.Tensor) -> torch.Tensor:
            b, t = x.shape[:2]
            f = self.frames(x.flatten(0, 1)).flatten(1).view(b, t, -1)
            pooled = torch.cat([f.mean(1), f.std(1)], dim=1)
            onehot = torch.nn.functional.one_hot(view, len(COARSE_VIEWS)).float()
            h = self.head(torch.cat([pooled, onehot], dim=1))
            out: torch.Tensor = self.out(torch.cat([h, onehot], dim=1))
            return out

    return ProbeNet()


def _batch(data: ProbeData, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    x = torch.from_numpy(np.ascontiguousarray(data.pixels[np.sort(rows)])).float().div_(255.0)
    x = x.permute(0, 1, 4, 2, 3).sub_(0.15).div_(0.2)  # (b, t, 3, s, s)
    return x, torch.from_numpy(data.view[np.sort(rows)])


@dataclass
class ProbeResult:
    """Held-out scores per finding and value, with their baselines, and the training's epoch lines."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    n_train_patients: int = 0
    n_test_patients: int = 0
    n_test_studies: int = 0
    seconds: float = 0.0

    def table(self) -> list[str]:
        """Markdown rows: finding, positives, AUROC >= 1 and >= 2 with 95 % intervals; value MAEs."""
        out = [
            "| finding | studies >=1 / >=2 (of n) | AUROC >=1 [95 % CI] | AUROC >=2 [95 % CI] |",
            "|---|---:|---:|---:|",
        ]
        for r in self.rows:
            if r["kind"] == "finding":
                out.append(
                    f"| {r['name']} | {r['pos1']} / {r['pos2']} (of {r['n']}) | {_fmt(r['auroc1'], r['ci1'])} | "
                    f"{_fmt(r['auroc2'], r['ci2'])} |"
                )
        out += ["", "| measurement | MAE (held-out studies) | baseline: training mean |", "|---|---:|---:|"]
        for r in self.rows:
            if r["kind"] == "value":
                out.append(f"| {r['name']} ({r['unit']}) | {r['mae']:.2f} (n={r['n']}) | {r['baseline']:.2f} |")
        return out


def _fmt(value: float, ci: tuple[float, float]) -> str:
    if np.isnan(value):
        return "-"
    return f"{value:.3f} [{ci[0]:.2f}, {ci[1]:.2f}]"


def _split(data: ProbeData, config: ProbeConfig) -> tuple[np.ndarray, np.ndarray]:
    patients = np.unique(data.patient)
    rng = np.random.default_rng(config.seed)
    test_patients = rng.choice(patients, size=max(1, round(len(patients) * config.test_fraction)), replace=False)
    test = np.isin(data.patient, test_patients)
    if test.all() or not test.any():
        raise ProbeError(f"the split of {len(patients)} patients left one side empty; simulate more patients")
    return np.flatnonzero(~test), np.flatnonzero(test)


def train_probe(data: ProbeData, config: ProbeConfig, *, echo: Callable[[str], None] | None = None) -> ProbeResult:
    """Train on the training patients' clips, score the held-out patients' studies."""
    import torch

    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    started = time.perf_counter()
    train_rows, test_rows = _split(data, config)
    find_mask, value_mask = _view_masks()
    mean = data.values[train_rows].mean(axis=0)
    std = data.values[train_rows].std(axis=0) + 1e-6
    n_f, n_v = len(FINDINGS), len(VALUES)
    net = _net(3 * n_f + n_v)
    steps = config.epochs * max(1, len(train_rows) // config.batch_size)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps)
    levels = np.arange(1, 4)
    rng = np.random.default_rng(config.seed)
    result = ProbeResult(
        n_train_patients=len(np.unique(data.patient[train_rows])),
        n_test_patients=len(np.unique(data.patient[test_rows])),
        n_test_studies=len(np.unique(data.study[test_rows])),
    )
    step = 0
    for epoch in range(config.epochs):
        net.train()
        order = rng.permutation(train_rows)
        losses = []
        t0 = time.perf_counter()
        for start in range(0, len(order) - config.batch_size + 1, config.batch_size):
            rows = np.sort(order[start : start + config.batch_size])
            x, view = _batch(data, rows)
            out = net(x, view)
            ordinal = torch.from_numpy((data.grades[rows][:, :, None] >= levels).astype(np.float32))
            fmask = torch.from_numpy(np.repeat(find_mask[data.view[rows]][:, :, None], 3, axis=2).astype(np.float32))
            logits = out[:, : 3 * n_f].view(-1, n_f, 3)
            bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, ordinal, reduction="none")
            loss_f = (bce * fmask).sum() / fmask.sum().clamp(min=1)
            target = torch.from_numpy(((data.values[rows] - mean) / std).astype(np.float32))
            vmask = torch.from_numpy(value_mask[data.view[rows]].astype(np.float32))
            loss_v = ((out[:, 3 * n_f :] - target) ** 2 * vmask).sum() / vmask.sum().clamp(min=1)
            loss = loss_f + loss_v
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step < steps - 1:
                sched.step()
            step += 1
            losses.append(float(loss.detach()))
        line = f"epoch {epoch + 1}/{config.epochs}: loss {np.mean(losses):.4f} ({time.perf_counter() - t0:.0f} s)"
        result.lines.append(line)
        if echo is not None:
            echo(line)
    probs, values = _predict(net, data, test_rows, config.batch_size)
    result.rows = _score(data, test_rows, probs, values, find_mask, value_mask, train_rows)
    result.seconds = time.perf_counter() - started
    return result


def _predict(net: Any, data: ProbeData, rows: np.ndarray, batch: int) -> tuple[np.ndarray, np.ndarray]:
    import torch

    net.eval()
    n_f = len(FINDINGS)
    probs, values = [], []
    with torch.no_grad():
        for start in range(0, len(rows), batch):
            x, view = _batch(data, rows[start : start + batch])
            out = net(x, view)
            probs.append(torch.sigmoid(out[:, : 3 * n_f].view(-1, n_f, 3)).numpy())
            values.append(out[:, 3 * n_f :].numpy())
    return np.concatenate(probs), np.concatenate(values)


def _score(
    data: ProbeData,
    rows: np.ndarray,
    probs: np.ndarray,
    values: np.ndarray,
    find_mask: np.ndarray,
    value_mask: np.ndarray,
    train_rows: np.ndarray,
) -> list[dict[str, Any]]:
    """Per study: each finding's P(>= level) averaged over clips of views that inform it."""
    studies = np.unique(data.study[rows])
    mean = data.values[train_rows].mean(axis=0)
    std = data.values[train_rows].std(axis=0) + 1e-6
    out: list[dict[str, Any]] = []
    for f, name in enumerate(FINDINGS):
        scores: dict[int, list[float]] = {1: [], 2: []}
        labels: dict[int, list[int]] = {1: [], 2: []}
        groups: list[int] = []
        for s in studies:
            mine = np.flatnonzero(data.study[rows] == s)
            shown = mine[find_mask[data.view[rows][mine], f]]
            use = shown if len(shown) else mine
            grade = int(data.grades[rows][mine[0], f])
            for level in (1, 2):
                scores[level].append(float(probs[use, f, level - 1].mean()))
                labels[level].append(int(grade >= level))
            groups.append(int(data.patient[rows][mine[0]]))
        out.append(
            {
                "kind": "finding",
                "name": name,
                "n": len(studies),
                "pos1": int(sum(labels[1])),
                "pos2": int(sum(labels[2])),
                "auroc1": auroc(scores[1], labels[1]),
                "ci1": auroc_interval(scores[1], labels[1], groups=groups, draws=500),
                "auroc2": auroc(scores[2], labels[2]),
                "ci2": auroc_interval(scores[2], labels[2], groups=groups, draws=500),
            }
        )
    for v, name in enumerate(VALUES):
        errors, baseline = [], []
        for s in studies:
            mine = np.flatnonzero(data.study[rows] == s)
            shown = mine[value_mask[data.view[rows][mine], v]]
            use = shown if len(shown) else mine
            predicted = float(values[use, v].mean() * std[v] + mean[v])
            true = float(data.values[rows][mine[0], v])
            errors.append(abs(predicted - true))
            baseline.append(abs(mean[v] - true))
        out.append(
            {
                "kind": "value",
                "name": name,
                "unit": PHENOTYPES[name].unit or "",
                "n": len(studies),
                "mae": float(np.mean(errors)),
                "baseline": float(np.mean(baseline)),
            }
        )
    return out


def describe(result: ProbeResult, config: ProbeConfig, extra: Sequence[str] = ()) -> list[str]:
    """The result as Markdown: the setup, the epoch lines and the table."""
    head = [
        f"Held out: {result.n_test_patients} patients, {result.n_test_studies} studies; trained on "
        f"{result.n_train_patients} patients; {config.epochs} epochs of {config.frames} frames at "
        f"{config.size} px, {result.seconds / 60:.1f} min on {config.threads} threads.",
        *extra,
        "",
        "```",
        *result.lines,
        "```",
        "",
    ]
    return head + result.table()
