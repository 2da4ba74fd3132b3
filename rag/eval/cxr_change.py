"""Change between chest X-ray visits on real images (NIH ChestX-ray14 thumbnails), on held-out patients.

Pairs are each held-out patient's consecutive visits; a pair "changed" when its NIH label sets differ,
and a label is "new" (absent, then present) or "resolved" (present, then absent). The image tower
(:mod:`rag.train.cxr`) is trained on the other patients only. Three scores of "did the findings
change?", each with its AUROC and a 95 % interval resampling patients:

- probability change: the summed absolute change of the tower's 14 label probabilities;
- embedding shift: the distance between the two images on the principal components (no labels used);
- change pairs (retrieval): the training patients' visit pairs whose embedding change points most like
  this one (k nearest by cosine of the change vectors) vote with their own "changed" label.

Per label: AUROC of the probability rise for "new" (pairs where it was absent before) and of the
probability fall for "resolved" (pairs where it was present), where both classes occur.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.core.stats import auroc, auroc_interval
from rag.train.cxr import NIH_LABELS, CXRImage, load_pixels, read_nih, split_patients, train_cxr

__all__ = ["CXRChangeResult", "evaluate_cxr_change", "visit_pairs"]


def visit_pairs(images: Sequence[CXRImage], patients: set[str]) -> list[tuple[CXRImage, CXRImage]]:
    """Consecutive visits (by follow-up number) of each patient in ``patients``."""
    by: dict[str, list[CXRImage]] = {}
    for im in images:
        if im.patient in patients:
            by.setdefault(im.patient, []).append(im)
    out = []
    for visits in by.values():
        visits.sort(key=lambda im: im.visit)
        out += list(itertools.pairwise(visits))
    return out


@dataclass
class CXRChangeResult:
    """The figures of one run."""

    train_patients: int
    test_patients: int
    train_images: int
    test_pairs: int
    changed_pairs: int
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    components: int = 0

    def markdown(self) -> str:
        lines = [
            "# Chest X-ray follow-up pairs: did the findings change?",
            "",
            f"Image tower fitted on {self.train_images} images of {self.train_patients} patients "
            f"({self.components} principal components + one logistic regression per label); scored on "
            f"{self.test_pairs} consecutive visit pairs of {self.test_patients} other patients, "
            f"{self.changed_pairs} with a change of NIH labels. Chance AUROC 0.5; 95 % intervals resample patients.",
            "",
            "| score | AUROC [95 % CI] |",
            "|---|---:|",
        ]
        for name, s in self.scores.items():
            lines.append(f"| {name} | {s['auroc']:.3f} [{s['low']:.3f}, {s['high']:.3f}] |")
        lines += ["", "| label | new: pairs (AUROC) | resolved: pairs (AUROC) |", "|---|---:|---:|"]
        for label, d in self.labels.items():
            lines.append(
                f"| {label} | {d['new']} ({_f(d['new_auroc'])}) | {d['resolved']} ({_f(d['resolved_auroc'])}) |"
            )
        if self.skipped:
            lines += ["", f"{len(self.skipped)} rows left out: " + "; ".join(self.skipped[:5])]
        return "\n".join(lines) + "\n"

    def write(self, out: Path) -> list[Path]:
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / "cxr-change.json", out / "cxr-change.md"]
        paths[0].write_text(json.dumps(self.__dict__, indent=2, default=str) + "\n", encoding="utf-8")
        paths[1].write_text(self.markdown(), encoding="utf-8")
        return paths


def _f(x: float) -> str:
    return "-" if np.isnan(x) else f"{x:.2f}"


def evaluate_cxr_change(folder: Path, *, components: int = 64, k: int = 15, seed: int = 0) -> CXRChangeResult:
    """Train on the training patients, score the held-out patients' visit pairs (see the module docstring)."""
    images, skipped = read_nih(folder)
    train_patients, test_patients = split_patients(images)
    train_images = [im for im in images if im.patient in train_patients]
    model = train_cxr(train_images, components=components)

    def read(pairs: list[tuple[CXRImage, CXRImage]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        before = load_pixels([a.path for a, _ in pairs])
        after = load_pixels([b.path for _, b in pairs])
        return model.embed(before), model.embed(after), model.probabilities(before), model.probabilities(after)

    test = visit_pairs(images, test_patients)
    train = visit_pairs(images, train_patients)
    eb, ea, pb, pa = read(test)
    tb, ta, _, _ = read(train)
    changed = np.array([a.labels != b.labels for a, b in test])
    groups = np.array([a.patient for a, _ in test])
    train_changed = np.array([a.labels != b.labels for a, b in train], dtype=np.float64)
    delta = ea - eb
    train_delta = ta - tb
    unit = delta / np.maximum(np.linalg.norm(delta, axis=1, keepdims=True), 1e-12)
    train_unit = train_delta / np.maximum(np.linalg.norm(train_delta, axis=1, keepdims=True), 1e-12)
    sims = unit @ train_unit.T
    nearest = np.argsort(-sims, axis=1)[:, :k]
    scores = {
        "probability change (summed over the 14 labels)": np.abs(pa - pb).sum(axis=1),
        "embedding shift (distance on the components)": np.linalg.norm(ea - eb, axis=1),
        f"change pairs (k={k} training visit pairs vote)": train_changed[nearest].mean(axis=1),
    }
    result = CXRChangeResult(
        len(train_patients),
        len(test_patients),
        len(train_images),
        len(test),
        int(changed.sum()),
        skipped=skipped,
        components=components,
    )
    for name, score in scores.items():
        low, high = auroc_interval(score, changed, groups=groups, seed=seed)
        result.scores[name] = {"auroc": auroc(score, changed), "low": low, "high": high}
    for j, label in enumerate(NIH_LABELS):
        had = np.array([label in a.labels for a, _ in test])
        has = np.array([label in b.labels for _, b in test])
        rise = pa[:, j] - pb[:, j]
        new, resolved = ~had & has, had & ~has
        result.labels[label] = {
            "new": int(new.sum()),
            "resolved": int(resolved.sum()),
            "new_auroc": auroc(rise[~had], new[~had]) if new.any() and (~had & ~has).any() else float("nan"),
            "resolved_auroc": auroc(-rise[had], resolved[had])
            if resolved.any() and (had & has).any()
            else float("nan"),
        }
    return result
