"""MilvusIndex on Milvus Lite (an embedded server on a local .db file): same answers as FAISS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from rag.core.errors import IndexInputError, VectorIndexError
from rag.index import SearchFilter, VectorIndex, build_index, load_index, manifest_for, save_index
from tests.index._data import Data, clustered, recall

pytest.importorskip("pymilvus", reason="needs the milvus extra: pip install 'echo-rag[milvus]'")
pytest.importorskip("milvus_lite", reason="needs the milvus extra: pip install 'echo-rag[milvus]'")

from rag.index.milvus_index import MilvusIndex

pytestmark = pytest.mark.integration

SHA = "ab" * 32


@pytest.fixture(scope="module")
def small() -> Data:
    """1,000 vectors of 32 dimensions (Milvus Lite inserts go through gRPC, row by row)."""
    return clustered(1000, 32, clusters=20, q=20, seed=11)


@pytest.fixture(scope="module")
def milvus_flat(tmp_path_factory: pytest.TempPathFactory, small: Data) -> Iterator[MilvusIndex]:
    index = MilvusIndex(str(tmp_path_factory.mktemp("milvus") / "lite.db"), "rag_clips", small.dim, "flat")
    index.add(small.ids, small.vectors)
    yield index
    index.close()


def test_flat_matches_faiss(milvus_flat: MilvusIndex, small: Data) -> None:
    assert isinstance(milvus_flat, VectorIndex) and len(milvus_flat) == small.ids.size
    faiss_flat = build_index(small.vectors, small.ids, kind="flat")
    filters = [
        None,
        SearchFilter(allowed_ids=small.ids[::100]),  # 1 %
        SearchFilter(excluded_ids=np.unique(faiss_flat.search(small.queries, 3)[1])),
        SearchFilter(allowed_ids=small.ids[:300], excluded_ids=small.ids[:50]),
    ]
    for flt in filters:
        s1, i1 = faiss_flat.search(small.queries, 10, filter=flt)
        s2, i2 = milvus_flat.search(small.queries, 10, filter=flt)
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_allclose(s1, s2, atol=1e-5)


def test_padding_and_empty_filters(milvus_flat: MilvusIndex, small: Data) -> None:
    scores, ids = milvus_flat.search(small.queries[:2], 5, filter=SearchFilter(allowed_ids=small.ids[:2]))
    assert (ids[:, :2] >= 0).all() and (ids[:, 2:] == -1).all() and np.isneginf(scores[:, 2:]).all()
    _, none = milvus_flat.search(small.queries[:2], 5, filter=SearchFilter(allowed_ids=np.array([], np.int64)))
    assert (none == -1).all()


def test_changes_and_errors(tmp_path: Path, small: Data) -> None:
    index = MilvusIndex(str(tmp_path / "lite.db"), "rag_changes", small.dim, "flat")
    index.add(small.ids[:200], small.vectors[:200])
    with pytest.raises(IndexInputError, match=r"already in the collection.*update"):
        index.add(small.ids[:3], small.vectors[:3])
    with pytest.raises(IndexInputError, match=r"shape \(n, 32\)"):
        index.add(np.array([1]), np.ones((1, 8), np.float32))
    with pytest.raises(IndexInputError, match=r"not in the collection.*add"):
        index.update(np.array([5]), small.vectors[:1])
    assert index.remove(np.concatenate([small.ids[:10], [3]])) == 10
    assert len(index) == 190
    _, ids = index.search(small.vectors[:10], 5)
    assert not np.isin(ids, small.ids[:10]).any()
    index.update(small.ids[20:21], small.queries[:1])
    scores, ids = index.search(small.queries[:1], 1)
    assert ids[0, 0] == small.ids[20] and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert np.array_equal(index.ids(), small.ids[10:200])
    np.testing.assert_allclose(index.get_vectors(small.ids[30:32]), small.vectors[30:32], atol=1e-6)
    index.close()


def test_save_and_load_through_the_manifest(tmp_path: Path, small: Data) -> None:
    folder = tmp_path / "indexes" / "clips"
    index = MilvusIndex(str(folder / "milvus.db"), "rag_clips", small.dim, "hnsw")
    index.add(small.ids, small.vectors)
    params = index.params | {"uri": "milvus.db"}
    manifest = manifest_for(
        index, name="clips", encoder="e", checkpoint_sha256=SHA, source="clips", build_params=params
    )
    save_index(index, folder, manifest)
    expected = index.search(small.queries, 10)
    index.close()
    loaded, m = load_index(folder, expect_encoder="e")
    assert isinstance(loaded, MilvusIndex) and m.backend == "milvus" and loaded.kind == "hnsw"
    got = loaded.search(small.queries, 10)
    np.testing.assert_array_equal(got[1], expected[1])
    assert recall(got[1], build_index(small.vectors, small.ids, kind="flat").search(small.queries, 10)[1]) >= 0.95
    loaded.close()


def test_ivf_flat_recall(tmp_path: Path, small: Data) -> None:
    index = MilvusIndex(str(tmp_path / "lite.db"), "rag_ivf", small.dim, "ivf_flat", nlist=16, nprobe=8)
    index.add(small.ids, small.vectors)
    truth = build_index(small.vectors, small.ids, kind="flat").search(small.queries, 10)[1]
    assert recall(index.search(small.queries, 10)[1], truth) >= 0.95
    _, ids = index.search(small.queries, 10, filter=SearchFilter(allowed_ids=small.ids[::100]))
    assert (ids >= 0).all() and np.isin(ids, small.ids[::100]).all()
    index.close()


def test_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(VectorIndexError, match=r"must be a file ending in \.db"):
        MilvusIndex(str(tmp_path / "lite.sqlite"), "rag_x", 8)
    with pytest.raises(VectorIndexError, match="Invalid Milvus collection name"):
        MilvusIndex(str(tmp_path / "lite.db"), "clips-main", 8)
    MilvusIndex(str(tmp_path / "lite.db"), "rag_x", 8).close()
    with pytest.raises(VectorIndexError, match="holds 8-d vectors, not 16-d"):
        MilvusIndex(str(tmp_path / "lite.db"), "rag_x", 16)
    with pytest.raises(VectorIndexError, match="does not exist"):
        MilvusIndex(str(tmp_path / "lite.db"), "rag_y", 8, create=False)


def test_cli_build_and_verify_with_milvus_lite(workspace: Path, small: Data, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from rag.cli.index import index_app
    from tests.index.test_cli import _embeddings

    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    emb = _embeddings(workspace, small)
    runner = CliRunner()
    out = runner.invoke(index_app, ["build", "--embeddings", str(emb), "--backend", "milvus", "--name", "m"])
    assert out.exit_code == 0, out.output
    assert (workspace / "indexes" / "m" / "milvus.db").exists()
    out = runner.invoke(index_app, ["verify", "m"])
    assert out.exit_code == 0, out.output
    assert "100/100" in out.output
