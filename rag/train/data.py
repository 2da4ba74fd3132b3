"""Training data: stored clips with their reports, the patient split, clip batches and text features.

:func:`load_items` reads every stored clip whose study has a report (:class:`ClipItem`);
:func:`split_by_patient` holds some patients out; :func:`clip_loader` batches clips (loaded and
preprocessed in worker processes, re-acquired at random when ``augment`` is on); :class:`TextEncoder`
embeds report texts, caching a frozen text backbone's features per distinct text for the whole run.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from rag.core.clipfile import read_clip
from rag.core.errors import RagError
from rag.store import Clip, Measurement, Patient, Report, Series, Store, Study
from rag.train.findings import report_grades
from rag.vocab.sections import FREE_TEXT

if TYPE_CHECKING:
    import torch

    from rag.encoders.model import EchoEncoder
    from rag.train.cache import ClipCache

__all__ = ["ClipItem", "TextEncoder", "TrainingError", "clip_loader", "finding_text", "load_items", "split_by_patient"]


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
    grades: tuple[int, ...] = ()  # the report's finding grades (rag.train.findings.report_grades)
    values: tuple[float, ...] = ()  # the study's measurements of rag.train.heads.HEAD_VALUES (nan: not reported)


def load_items(store: Store, media_dir: Path, view_classes: Sequence[str]) -> list[ClipItem]:
    """Every stored clip whose study has a report, with its report text, sections and view index."""
    from rag.train.heads import HEAD_VALUES

    index = {v: i for i, v in enumerate(view_classes)}
    items: list[ClipItem] = []
    with store.session() as s:
        measured: dict[int, dict[str, float]] = {}
        for study_id, name, value in s.execute(
            select(Measurement.study_id, Measurement.name, Measurement.value)
            .where(Measurement.name.in_(HEAD_VALUES))
            .order_by(Measurement.id)
        ):
            measured.setdefault(int(study_id), {}).setdefault(name, float(value))
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
                    tuple(measured.get(study_id, {}).get(m, float("nan")) for m in HEAD_VALUES),
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
            from rag.train.augment import ClipAugment

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


def clip_loader(
    items: Sequence[ClipItem],
    model: EchoEncoder,
    batch_size: int,
    *,
    shuffle: bool,
    workers: int,
    seed: int,
    augment: bool = False,
    cache: ClipCache | None = None,
) -> Any:
    """Batches (video tensor, item index) of ``items``, shuffled with ``seed``.

    With ``cache`` (every item's clip in it: :func:`rag.train.cache.build_clip_cache`) they come from
    the memory-mapped cache, decoding nothing; otherwise a ``DataLoader`` reads the clip files in
    ``workers`` processes.
    """
    import torch
    from torch.utils.data import DataLoader

    if cache is not None:
        from rag.train.cache import cached_batches

        ids = [it.clip_id for it in items]
        pre = model.spec.preprocessing
        return cached_batches(cache, ids, pre, batch_size, shuffle=shuffle, seed=seed, augment=augment)

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
