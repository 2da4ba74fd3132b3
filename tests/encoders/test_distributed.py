"""Embedding on a local Ray cluster: the same vectors as in-process, each row once, and a worker killed
mid-run costs nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from rag.encoders import load_checkpoint
from rag.encoders.distributed import embed_media_ray, read_parts
from rag.encoders.embed import _embed_media
from rag.store import Clip, open_store
from tests.conftest import EmbeddedArchive

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clips(embedded_archive: EmbeddedArchive) -> list[tuple[int, Path]]:
    store = open_store(embedded_archive.config.db_url)
    try:
        with store.session() as s:
            rows = s.execute(select(Clip.id, Clip.path).order_by(Clip.id)).all()
    finally:
        store.close()
    return [(int(i), embedded_archive.config.media_dir / p) for i, p in rows]


def test_a_killed_worker_loses_nothing_and_repeats_nothing(
    embedded_archive: EmbeddedArchive, clips: list[tuple[int, Path]], tmp_path: Path
) -> None:
    pytest.importorskip("ray")
    model, _ = load_checkpoint(embedded_archive.checkpoint)
    want_vecs, want_probs = _embed_media(model, [p for _, p in clips], 16, lambda _: None)
    marker = tmp_path / "crashed"
    ids, vecs, probs = embed_media_ray(
        clips,
        embedded_archive.checkpoint,
        tmp_path / "parts",
        preprocessing=model.spec.preprocessing.model_dump(mode="json"),
        workers=2,
        batch_size=8,
        crash_once=marker,
    )
    assert marker.exists()  # an actor did die mid-batch
    assert ids.tolist() == [i for i, _ in clips]  # every row, each once
    np.testing.assert_allclose(vecs, want_vecs, atol=1e-5)
    np.testing.assert_allclose(probs, want_probs, atol=1e-5)
    # a re-run with everything already written embeds nothing more and reads the same rows
    parts = sorted(p.name for p in (tmp_path / "parts").glob("*.npz"))
    again = embed_media_ray(
        clips,
        embedded_archive.checkpoint,
        tmp_path / "parts",
        preprocessing=model.spec.preprocessing.model_dump(mode="json"),
        workers=1,
    )
    assert sorted(p.name for p in (tmp_path / "parts").glob("*.npz")) == parts
    assert again[0].tolist() == ids.tolist()
    assert read_parts(tmp_path / "parts")[0].tolist() == ids.tolist()


def test_rag_embed_with_the_ray_engine_writes_the_same_embeddings(
    embedded_archive: EmbeddedArchive, tmp_path: Path
) -> None:
    pytest.importorskip("ray")
    from typer.testing import CliRunner

    from rag.cli import app
    from rag.encoders.embed import load_embeddings
    from tests.conftest import KEY

    env = {"RAG_HOME": str(embedded_archive.config.home), "RAG_PSEUDONYM_KEY": KEY, "RAG_INGEST__SIZE": "64"}
    home = tmp_path / "ws"
    shutil.copytree(embedded_archive.config.home, home, ignore=shutil.ignore_patterns("embeddings", "indexes"))
    env["RAG_HOME"] = str(home)
    r = CliRunner().invoke(
        app, ["embed", "--checkpoint", str(embedded_archive.checkpoint), "--engine", "ray", "--workers", "2"], env=env
    )
    assert r.exit_code == 0, r.output
    folder = home / "embeddings" / embedded_archive.embeddings.name
    assert not (folder / "ray-parts").exists()  # merged, then removed
    for kind in ("clips", "sections"):
        got, want = load_embeddings(folder, kind), load_embeddings(embedded_archive.embeddings, kind)
        assert got.ids.tolist() == want.ids.tolist()
        np.testing.assert_allclose(got.vectors, want.vectors, atol=1e-5)
