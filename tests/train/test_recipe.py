"""A small run of the findings recipe learns what a user relies on: views, and neighbours that share findings.

A fixed-seed archive of 24 simulated patients is trained on for a few epochs from the clip cache;
the figures come from the patients the run held out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rag.core.config import RagConfig, load_config
from rag.core.stats import auroc
from rag.encoders import load_checkpoint
from rag.store import open_store
from rag.train.data import ClipItem, clip_loader, load_items, split_by_patient
from rag.train.findings import finding_names, view_finding_mask
from rag.train.loop import TrainConfig, train

FINDING = "lv_systolic_dysfunction"
VIEW_MARGIN = 0.5  # held-out view accuracy above chance (1/11)
AUROC_MARGIN = 0.2  # held-out neighbour-vote AUROC above chance (0.5)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> RagConfig:
    from rag.ingest.pipeline import ingest
    from rag.simulate.archive import SimulationOptions, simulate_archive

    root = tmp_path_factory.mktemp("recipe")
    simulate_archive(
        root / "archive",
        patients=24,
        seed=5,
        options=SimulationOptions(height=80, width=96, doppler_probability=0.7, mp4_probability=0.0),
    )
    cfg = load_config(home=root / "ws", pseudonym_key="recipe-tests", ingest={"frames": 16, "size": 64})
    report = ingest([root / "archive" / "patients"], cfg)
    assert report.counts["skipped"] == 0
    return cfg


def test_a_short_run_learns_views_and_neighbours_that_share_a_finding(archive: RagConfig, tmp_path: Path) -> None:
    lines: list[str] = []
    cfg = TrainConfig(
        encoder="echo-video-grid",
        out=tmp_path / "ckpt",
        epochs=8,
        batch_size=32,
        lr=2e-3,
        val_fraction=0.3,
        seed=0,
        workers=0,
        progress=False,
        cache_dir=archive.home / "cache",
    )
    store = open_store(archive.db_url)
    try:
        result = train(store, archive.media_dir, cfg, log_line=lines.append)
        model, info = load_checkpoint(result.checkpoint)
        items = load_items(store, archive.media_dir, model.spec.view_classes)
    finally:
        store.close()
    assert lines[0].startswith("clip cache:") and any(line.startswith("epoch 8:") for line in lines)
    seen, held = split_by_patient(items, cfg.val_fraction, cfg.seed)
    assert sorted({it.patient for it in held}) == info.extra["val_patients"]
    chance = 1 / len(model.spec.view_classes)
    assert result.history[-1].view_accuracy > chance + VIEW_MARGIN, lines[-1]

    # neighbour vote: each held-out clip's 5 nearest training clips, the share whose study has the finding
    from rag.train.cache import build_clip_cache

    cache = build_clip_cache([(it.clip_id, it.path) for it in items], model.spec.preprocessing, archive.home / "cache")
    assert not cache.built  # the run's cache, opened again (not decoded a second time)

    def embed(part: list[ClipItem]) -> torch.Tensor:
        loader = clip_loader(part, model, 32, shuffle=False, workers=0, seed=0, cache=cache)
        with torch.no_grad():
            return torch.cat([model.encode_video(v) for v, _ in loader])

    k = finding_names().index(FINDING)
    train_emb, test_emb = embed(seen), embed(held)
    positive = np.array([it.grades[k] >= 1 for it in seen])
    nearest = (test_emb @ train_emb.t()).topk(5, dim=1).indices.numpy()
    clip_vote = positive[nearest].mean(axis=1)
    # as the retriever does: a study's vote comes from the clips of the views that show the finding
    shows = [view_finding_mask(model.spec.view_classes[it.view])[k] if it.view >= 0 else False for it in held]
    studies = sorted({it.study_id for it, shown in zip(held, shows, strict=True) if shown})
    score = [
        float(np.mean([v for v, it, shown in zip(clip_vote, held, shows, strict=True) if shown and it.study_id == s]))
        for s in studies
    ]
    label = [int(next(it for it in held if it.study_id == s).grades[k] >= 1) for s in studies]
    assert 0 < sum(label) < len(label), "the held-out patients must hold both classes"
    value = auroc(score, label)
    assert value > 0.5 + AUROC_MARGIN, (value, sum(label), len(label), lines[-1])
