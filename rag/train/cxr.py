"""A chest X-ray image tower trained on NIH ChestX-ray14 thumbnails, for change between visits.

The folder (``labels.csv``: ``path, image_index, finding_labels, follow_up, patient_id, age, sex, view,
split``) splits images, not patients, so the split here is by patient: a patient with any image in the
folder's ``train`` split is a training patient, every other patient is held out. The tower is linear:
the training images' principal components (64x64 grayscale in, 64 coordinates out) and one
L2-regularised logistic regression per NIH label on them, fitted on the training patients' images
only. On 739 thumbnails it reads the labels and their change better than a small CNN trained from
scratch did (docs/compare.md).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.core.errors import RagError

__all__ = ["NIH_LABELS", "CXRImage", "CXRModel", "read_nih", "split_patients", "train_cxr"]

NIH_LABELS = (
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Effusion",
    "Emphysema",
    "Fibrosis",
    "Hernia",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pleural_Thickening",
    "Pneumonia",
    "Pneumothorax",
)


@dataclass(frozen=True)
class CXRImage:
    """One image: its file, patient, visit number, folder split and labels."""

    path: Path
    patient: str
    visit: int
    split: str
    labels: frozenset[str]

    def vector(self) -> np.ndarray:
        return np.array([label in self.labels for label in NIH_LABELS], dtype=np.float32)


def read_nih(folder: Path) -> tuple[list[CXRImage], list[str]]:
    """The images of ``labels.csv`` whose files exist, and a line for each row left out (and why).

    Raises:
        RagError: no ``labels.csv`` in ``folder``, or it lacks the columns.
    """
    path = folder / "labels.csv"
    if not path.is_file():
        raise RagError(f"{path} not found: point --data at the NIH ChestX-ray14 folder (labels.csv + images)")
    images, skipped = [], []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        need = {"path", "finding_labels", "follow_up", "patient_id", "split"}
        if not need <= set(reader.fieldnames or ()):
            raise RagError(f"{path} lacks the columns {sorted(need - set(reader.fieldnames or ()))}")
        for n, row in enumerate(reader, start=2):
            try:
                image = folder / row["path"]
                if not image.is_file():
                    raise ValueError(f"image {image} not found")
                labels = frozenset(x for x in row["finding_labels"].split("|") if x and x != "No Finding")
                unknown = labels - set(NIH_LABELS)
                if unknown:
                    raise ValueError(f"unknown labels {sorted(unknown)}")
                images.append(CXRImage(image, row["patient_id"], int(row["follow_up"]), row["split"], labels))
            except (ValueError, KeyError) as e:
                skipped.append(f"{path} line {n}: {e}")
    return images, skipped


def split_patients(images: Sequence[CXRImage]) -> tuple[set[str], set[str]]:
    """(training patients, held-out patients): a patient with any image in the ``train`` split trains."""
    train = {im.patient for im in images if im.split == "train"}
    return train, {im.patient for im in images} - train


def load_pixels(paths: Sequence[Path]) -> np.ndarray:
    """(n, 1, 64, 64) float32 in [0, 1], grayscale."""
    from PIL import Image

    out = np.zeros((len(paths), 1, 64, 64), np.float32)
    for i, p in enumerate(paths):
        with Image.open(p) as im:
            out[i, 0] = np.asarray(im.convert("L").resize((64, 64)), np.float32) / 255.0
    return out


@dataclass(frozen=True)
class CXRModel:
    """The trained tower: principal components of the training images (the embedding) and one
    L2-regularised logistic regression per label on them.

    :meth:`embed` gives (n, d) coordinates on the components, :meth:`probabilities` (n, 14).
    """

    mean: np.ndarray  # (4096,)
    components: np.ndarray  # (d, 4096), orthonormal rows
    weights: np.ndarray  # (d, 14)
    bias: np.ndarray  # (14,)

    def embed(self, x: np.ndarray) -> np.ndarray:
        flat = x.reshape(len(x), -1) - self.mean
        return np.asarray(flat @ self.components.T, np.float64)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(1.0 / (1.0 + np.exp(-(self.embed(x) @ self.weights + self.bias))))


def train_cxr(images: Sequence[CXRImage], *, components: int = 64, c: float = 0.1) -> CXRModel:
    """Fit the tower on ``images`` (the training patients' only): principal components of the pixels,
    then per label a logistic regression with inverse regularisation strength ``c`` (the objective
    ``c * sum(log loss) + |w|^2 / 2``), solved by L-BFGS. Labels seen fewer than 3 times get no weight
    (probability at their training frequency)."""
    import torch

    if len(images) < components:
        raise RagError(f"{len(images)} training images: need at least {components} for {components} components")
    x = load_pixels([im.path for im in images]).reshape(len(images), -1).astype(np.float64)
    y = np.stack([im.vector() for im in images]).astype(np.float64)
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    basis = vt[:components]
    z = torch.from_numpy((x - mean) @ basis.T)
    target = torch.from_numpy(y)
    w = torch.zeros((components, len(NIH_LABELS)), dtype=torch.float64, requires_grad=True)
    b = torch.zeros(len(NIH_LABELS), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = c * torch.nn.functional.binary_cross_entropy_with_logits(z @ w + b, target, reduction="sum")
        loss = loss + 0.5 * (w**2).sum()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    opt.step(closure)  # type: ignore[no-untyped-call]
    weights, bias = w.detach().numpy().copy(), b.detach().numpy().copy()
    rare = y.sum(axis=0) < 3
    weights[:, rare] = 0.0
    freq = y.mean(axis=0).clip(1e-3, 1 - 1e-3)
    bias[rare] = np.log(freq[rare] / (1 - freq[rare]))
    return CXRModel(mean, basis, weights, bias)
