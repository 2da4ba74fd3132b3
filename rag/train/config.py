"""The settings of an encoder training run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rag.encoders.spec import DEFAULT_ENCODER

__all__ = ["TrainConfig"]


@dataclass
class TrainConfig:
    """Encoder, output folder, optimisation, loss weights and how the run is scheduled and resumed."""

    encoder: str = DEFAULT_ENCODER
    out: Path = Path("checkpoints")
    epochs: int = 40
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.2
    seed: int = 0
    device: str = "cpu"
    workers: int = 1
    view_loss_weight: float = 1.0
    section_loss_weight: float = 0.5
    finding_temperature: float = 0.5  # soft clip->report targets; 0: exact report texts only
    text_loss_weight: float = 0.5  # report<->report InfoNCE, finding-affinity targets at T = finding_temperature or 0.5
    finding_loss_weight: float = 4.0  # finding and measurement heads on the clip embedding (rag.train.heads; 0: off)
    schedule: str = "cosine"  # learning rate over the run: "cosine" (decays to 0 at the last step) or "constant"
    stop_after: int | None = None  # end after this epoch (resume later to finish the same run and schedule)
    augment: bool = True  # random gain/gamma/zoom/shift/rotation of training clips
    resume: bool = False
    precision: str = "auto"  # auto: fp16 autocast on CUDA, fp32 on CPU; or "fp32" / "bf16"
    progress: bool = True
    cache_dir: Path | None = None  # decode every clip once into a memory-mapped cache here (None: read files per step)
