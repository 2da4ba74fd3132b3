"""`rag index build / info / list / verify` on an embeddings folder laid out as `rag embed` writes it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rag.cli.index import index_app
from tests.index._data import Data

SHA = "0123456789abcdef" * 4


@pytest.fixture(autouse=True)
def _openmp_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands set OMP_WAIT_POLICY when unset; keep that from leaking into other tests."""
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")


def _embeddings(root: Path, data: Data, encoder: str = "echo-video-tiny") -> Path:
    folder = root / "embeddings" / f"{encoder}@{SHA[:12]}"
    folder.mkdir(parents=True)
    np.save(folder / "clips.ids.npy", data.ids)
    np.save(folder / "clips.vectors.npy", data.vectors)
    np.save(folder / "clips.view_probs.npy", np.full((data.ids.size, 11), 1 / 11, np.float32))
    manifest = {
        "encoder": encoder,
        "checkpoint_sha256": SHA,
        "dim": data.dim,
        "metric": "inner_product",
        "normalisation": "l2",
        "preprocessing": {"frames": 16, "size": 64},
        "view_classes": [],
        "counts": {"clips": int(data.ids.size)},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.mark.parametrize("kind", ["auto", "hnsw", "ivf_pq"])
def test_build_info_verify(workspace: Path, data: Data, kind: str) -> None:
    emb = _embeddings(workspace, data)
    runner = CliRunner()
    out = runner.invoke(index_app, ["build", "--embeddings", str(emb), "--kind", kind, "--name", "clips-a"])
    assert out.exit_code == 0, out.output
    assert "n=4000 dim=32 encoder=echo-video-tiny" in out.output
    assert (workspace / "indexes" / "clips-a" / "manifest.json").is_file()

    out = runner.invoke(index_app, ["info", "clips-a"])
    assert out.exit_code == 0 and SHA in out.output and "index.faiss" in out.output
    out = runner.invoke(index_app, ["list"])
    assert out.exit_code == 0 and "clips-a" in out.output
    out = runner.invoke(index_app, ["verify", "clips-a"])
    assert out.exit_code == 0, out.output
    assert "100/100 stored vectors found themselves" in out.output and "embeddings: ok" in out.output


def test_build_refuses_to_overwrite_and_bad_options(workspace: Path, data: Data) -> None:
    emb = _embeddings(workspace, data)
    runner = CliRunner()
    assert runner.invoke(index_app, ["build", "--embeddings", str(emb)]).exit_code == 0
    out = runner.invoke(index_app, ["build", "--embeddings", str(emb)])
    assert out.exit_code == 2 and "already exists" in out.output and "--force" in out.output
    assert runner.invoke(index_app, ["build", "--embeddings", str(emb), "--force", "-p", "nprobe=4"]).exit_code == 0
    out = runner.invoke(index_app, ["build", "--embeddings", str(emb), "--source", "images", "--name", "i"])
    assert out.exit_code == 2 and "holds no images vectors" in out.output
    out = runner.invoke(index_app, ["build", "--embeddings", str(emb), "--kind", "lsh", "--name", "x"])
    assert out.exit_code == 2 and "Unknown index kind 'lsh'" in out.output
    out = runner.invoke(index_app, ["build", "--embeddings", str(workspace), "--name", "x"])
    assert out.exit_code == 2 and "not an embeddings folder" in out.output
    out = runner.invoke(index_app, ["build", "--embeddings", str(emb), "--name", "x", "-p", "nlists=3"])
    assert out.exit_code == 2 and "Allowed parameters" in out.output


def test_verify_reports_stale_and_broken_indexes(workspace: Path, data: Data) -> None:
    emb = _embeddings(workspace, data)
    runner = CliRunner()
    assert runner.invoke(index_app, ["build", "--embeddings", str(emb), "--kind", "flat"]).exit_code == 0

    # The embeddings gained vectors since the index was built.
    np.save(emb / "clips.ids.npy", np.concatenate([data.ids, [10**10]]))
    np.save(emb / "clips.vectors.npy", np.concatenate([data.vectors, data.vectors[:1]]))
    out = runner.invoke(index_app, ["verify", "clips"])
    assert out.exit_code == 1 and "1 embedded but not indexed" in out.output

    # Another checkpoint's vectors now sit in the recorded folder.
    manifest = json.loads((emb / "manifest.json").read_text())
    (emb / "manifest.json").write_text(json.dumps({**manifest, "checkpoint_sha256": "f" * 64}))
    out = runner.invoke(index_app, ["verify", "clips"])
    assert out.exit_code == 1 and "checkpoint_sha256" in out.output and "rag index build" in out.output

    # The index files themselves are damaged.
    (workspace / "indexes" / "clips" / "ids.npy").unlink()
    out = runner.invoke(index_app, ["verify", "clips"])
    assert out.exit_code == 1 and "ids.npy is missing" in out.output
    out = runner.invoke(index_app, ["verify", "nope"])
    assert out.exit_code == 2 and "No index at" in out.output


def test_migrate_to_milvus_and_back_keeps_ids_and_answers(workspace: Path, data: Data) -> None:
    pytest.importorskip("milvus_lite")
    from rag.index.store import load_index

    emb = _embeddings(workspace, data)
    runner = CliRunner()
    assert runner.invoke(index_app, ["build", "--embeddings", str(emb), "--kind", "flat"]).exit_code == 0
    out = runner.invoke(index_app, ["migrate", "clips", "--to", "milvus"])
    assert out.exit_code == 0, out.output
    assert "backend=milvus" in out.output and "overlap with the source on 32 stored vectors: 1.000" in out.output
    back = runner.invoke(index_app, ["migrate", "clips-milvus", "--to", "faiss", "--as", "clips-again"])
    assert back.exit_code == 0 and "overlap with the source on 32 stored vectors: 1.000" in back.output
    a, ma = load_index(workspace / "indexes" / "clips")
    b, mb = load_index(workspace / "indexes" / "clips-again")
    assert (mb.backend, mb.encoder, mb.checkpoint_sha256, mb.count) == ("faiss", ma.encoder, SHA, ma.count)
    q = data.vectors[:5]
    assert (a.search(q, 10)[1] == b.search(q, 10)[1]).all()
    again = runner.invoke(index_app, ["migrate", "clips", "--to", "faiss"])
    assert again.exit_code != 0 and "already a faiss index" in again.output
    clash = runner.invoke(index_app, ["migrate", "clips", "--to", "milvus"])
    assert clash.exit_code != 0 and "already exists" in clash.output
