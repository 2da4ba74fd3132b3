"""Fixtures of the retrieval tests: a small simulated archive, ingested and embedded with an untrained encoder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from rag.config import RagConfig, load_config
from rag.ingest.pipeline import ingest
from rag.simulate.archive import SimulationOptions, simulate_archive

KEY = "retrieve-tests-key"


@dataclass(frozen=True)
class EmbeddedArchive:
    """An ingested simulated archive and the embeddings folder of a fresh ``echo-video-tiny`` checkpoint."""

    archive: Path
    config: RagConfig
    embeddings: Path


@pytest.fixture(scope="session")
def embedded_archive(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedArchive:
    from rag.encoders import create, load_checkpoint, save_checkpoint
    from rag.encoders.embed import embed_store, embeddings_dir
    from rag.store import open_store

    root = tmp_path_factory.mktemp("retrieve")
    simulate_archive(
        root / "archive",
        patients=3,
        seed=11,
        options=SimulationOptions(height=64, width=80, doppler_probability=0.7, mp4_probability=0.0),
    )
    cfg = load_config(home=root / "ws", pseudonym_key=KEY, ingest={"frames": 16, "size": 64})
    report = ingest([root / "archive" / "patients"], cfg)
    assert report.counts["skipped"] == 0
    ckpt = root / "tiny.pt"
    save_checkpoint(create("echo-video-tiny"), ckpt)
    model, info = load_checkpoint(ckpt)
    store = open_store(cfg.db_url)
    try:
        embed_store(store, cfg.media_dir, root / "emb", model, info.sha256, batch_size=16)
    finally:
        store.close()
    return EmbeddedArchive(root / "archive", cfg, embeddings_dir(root / "emb", model.spec.name, info.sha256))
