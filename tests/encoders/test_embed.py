from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from rag.core.config import RagConfig
from rag.encoders import create, file_sha256, load_checkpoint, save_checkpoint
from rag.encoders.embed import EmbeddingMismatchError, embed_store, embeddings_dir, load_embeddings
from rag.store import Clip, ReportSection, StillImage, open_store


def test_embed_writes_every_item_once_and_refuses_other_encoders(ingested_archive: RagConfig, tmp_path: Path) -> None:
    ckpt = tmp_path / "tiny.pt"
    sha = save_checkpoint(create("echo-video-tiny"), ckpt)
    assert sha == file_sha256(ckpt)
    model, info = load_checkpoint(ckpt)
    store = open_store(ingested_archive.db_url)
    root = tmp_path / "emb"
    try:
        counts = embed_store(store, ingested_archive.media_dir, root, model, info.sha256, batch_size=8)
        with store.session() as s:
            n_clips = s.scalar(select(func.count()).select_from(Clip))
            n_images = s.scalar(select(func.count()).select_from(StillImage))
            n_sections = s.scalar(select(func.count()).select_from(ReportSection))
        assert counts == {"clips": n_clips, "images": n_images, "sections": n_sections}
        folder = embeddings_dir(root, "echo-video-tiny", info.sha256)
        clips = load_embeddings(folder, "clips", encoder="echo-video-tiny", sha256=info.sha256)
        assert clips.vectors.shape == (n_clips, model.spec.embed_dim) and clips.vectors.dtype == np.float32
        assert np.allclose(np.linalg.norm(clips.vectors, axis=1), 1.0, atol=1e-4)
        assert clips.extra["view_probs"].shape == (n_clips, 11)
        assert list(clips.ids) == sorted(clips.ids)
        before = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.npy")}
        again = embed_store(store, ingested_archive.media_dir, root, model, info.sha256, batch_size=8)
        assert again == counts
        assert np.array_equal(load_embeddings(folder, "clips").vectors, clips.vectors)
        assert set(before) == {p.name for p in folder.glob("*.npy")}
    finally:
        store.close()
    with pytest.raises(EmbeddingMismatchError, match="checkpoint"):
        load_embeddings(folder, "clips", encoder="echo-video-tiny", sha256="0" * 64)
    with pytest.raises(EmbeddingMismatchError, match="encoder"):
        load_embeddings(folder, "clips", encoder="echoprime-mvit")
