from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rag.config import RagConfig
from rag.encoders import load_checkpoint
from rag.encoders.train import TrainConfig, TrainingError, load_items, split_by_patient, train
from rag.store import open_store


def _cfg(out: Path, **kw: object) -> TrainConfig:
    base = dict(out=out, epochs=2, batch_size=8, lr=1e-3, val_fraction=0.34, seed=1, workers=0, progress=False)
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_split_keeps_patients_apart(ingested_archive: RagConfig) -> None:
    store = open_store(ingested_archive.db_url)
    items = load_items(store, ingested_archive.media_dir, ("A4C",))
    store.close()
    train_items, val_items = split_by_patient(items, 0.34, seed=0)
    assert train_items and val_items
    assert {i.patient for i in train_items}.isdisjoint({i.patient for i in val_items})
    with pytest.raises(TrainingError, match="val_fraction"):
        split_by_patient(items, 1.0, seed=0)


def test_training_learns_checkpoints_and_resumes(ingested_archive: RagConfig, tmp_path: Path) -> None:
    store = open_store(ingested_archive.db_url)
    lines: list[str] = []
    try:
        full = train(store, ingested_archive.media_dir, _cfg(tmp_path / "full"), log_line=lines.append)
        assert [h.epoch for h in full.history] == [0, 1, 2]
        assert "untrained" in lines[0] and lines[-1].startswith("epoch 2:")
        assert full.history[2].train_loss < full.history[1].train_loss  # it learns
        assert (tmp_path / "full" / "epoch-001.pt").is_file() and full.checkpoint.is_file()

        half = train(store, ingested_archive.media_dir, _cfg(tmp_path / "half", epochs=1), log_line=lines.append)
        assert [h.epoch for h in half.history] == [0, 1]
        resumed = train(
            store, ingested_archive.media_dir, _cfg(tmp_path / "half", epochs=2, resume=True), log_line=lines.append
        )
        assert [h.epoch for h in resumed.history] == [0, 1, 2]
    finally:
        store.close()
    a, _ = load_checkpoint(full.checkpoint)
    b, info = load_checkpoint(resumed.checkpoint)
    assert info.epoch == 2
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.allclose(pa.float(), pb.float(), atol=1e-5), name  # resume == uninterrupted run
