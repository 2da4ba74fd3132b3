"""The retrieval corpus of a suite: training items embedded by question and by image, and the
leakage check that keeps test images out of it.

- Questions: all-MiniLM-L6-v2 sentence embeddings (the project's text tower, frozen).
- Images: a pixel embedding fitted on the training split: every image as a 32x32 grey thumbnail,
  standardised, projected on the training images' first principal components and L2-normalised.
  It finds the same image under another name and images of the same organ and modality; it is a
  baseline image tower, fitted here in seconds, not a learned medical encoder.
- Leakage: an image is identified by the SHA-256 of its decoded pixels, so a renamed or re-encoded
  copy with the same pixels is the same image. A test item whose image (or patient) is in the corpus
  leaks its answer through retrieval.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from rag.eval.vqa.items import VQAItem
from rag.eval.vqa.loaders import VQAError

__all__ = ["LEAKAGE_POLICIES", "Corpus", "Leakage", "image_hash"]

LEAKAGE_POLICIES = ("refuse", "exclude", "allow")
_THUMB = 32


@cache
def _pixels(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L"))
    except (OSError, UnidentifiedImageError) as e:
        raise VQAError(f"cannot read image {path}: {e}") from e


def image_hash(path: Path) -> str:
    """SHA-256 of the decoded grey pixels and their shape (independent of file name and container)."""
    px = _pixels(Path(path))
    return hashlib.sha256(np.asarray(px.shape, dtype=np.int64).tobytes() + px.tobytes()).hexdigest()


def _thumbnail(path: Path) -> np.ndarray:
    from PIL import Image

    px = Image.fromarray(_pixels(Path(path))).resize((_THUMB, _THUMB), Image.Resampling.BILINEAR)
    x = np.asarray(px, dtype=np.float32).ravel()
    out: np.ndarray = (x - x.mean()) / (x.std() + 1e-6)
    return out


@dataclass
class Leakage:
    """Test items whose image or patient is in the corpus."""

    by_image: dict[str, list[int]] = field(default_factory=dict)  # test item id -> corpus rows of its image
    by_patient: dict[str, list[int]] = field(default_factory=dict)

    @property
    def items(self) -> set[str]:
        return set(self.by_image) | set(self.by_patient)

    def line(self, n_test: int) -> str:
        return (
            f"{len(self.items)} of {n_test} test items have their image ({len(self.by_image)}) or patient "
            f"({len(self.by_patient)}) in the retrieval corpus"
        )


class Corpus:
    """Training items with question and image embeddings, searched by cosine similarity."""

    def __init__(self, items: Sequence[VQAItem], *, components: int = 64) -> None:
        from rag.kb.embed import MiniLMEmbedder

        if not items:
            raise VQAError("the retrieval corpus is empty: load the suite's training split")
        self.items = list(items)
        self.text = MiniLMEmbedder()
        self.questions = self.text.encode([it.question for it in self.items])
        paths = sorted({p for it in self.items for p in it.images})
        thumbs = np.stack([_thumbnail(p) for p in paths])
        self.mean = thumbs.mean(axis=0)
        _, _, vt = np.linalg.svd(thumbs - self.mean, full_matrices=False)
        self.basis = vt[: min(components, len(vt))]
        by_path = dict(zip(paths, self._project(thumbs), strict=True))
        self.images = np.stack([by_path[it.images[0]] for it in self.items]) if paths else None
        hashes = {p: image_hash(p) for p in paths}
        self.image_rows: dict[str, list[int]] = {}
        for row, it in enumerate(self.items):
            for p in it.images:
                self.image_rows.setdefault(hashes[p], []).append(row)
        self.version = hashlib.sha256(
            "\n".join(f"{it.id}\t{hashes[it.images[0]] if it.images else ''}" for it in self.items).encode()
        ).hexdigest()[:16]

    def _project(self, thumbs: np.ndarray) -> np.ndarray:
        z = (thumbs - self.mean) @ self.basis.T
        out: np.ndarray = (z / (np.linalg.norm(z, axis=1, keepdims=True) + 1e-9)).astype(np.float32)
        return out

    def embed_image(self, path: Path) -> np.ndarray:
        out: np.ndarray = self._project(_thumbnail(path)[None])[0]
        return out

    def leakage(self, test: Sequence[VQAItem]) -> Leakage:
        """Which test items would retrieve their own image (by pixel hash) or patient."""
        out = Leakage()
        patients: dict[str, list[int]] = {}
        for row, it in enumerate(self.items):
            if it.patient:
                patients.setdefault(it.patient, []).append(row)
        for it in test:
            rows = sorted({r for p in it.images for r in self.image_rows.get(image_hash(p), [])})
            if rows:
                out.by_image[it.id] = rows
            if it.patient and it.patient in patients:
                out.by_patient[it.id] = patients[it.patient]
        return out
