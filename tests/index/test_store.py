"""Saving and loading indexes: memory-mapped loads give identical answers; manifests refuse mismatches."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from rag.core.errors import ManifestMismatchError, VectorIndexError
from rag.index import FaissIndex, IndexManifest, SearchFilter, build_index, load_index, manifest_for, save_index
from rag.index.store import read_manifest
from tests.index._data import Data

KINDS = ["flat", "hnsw", "ivf_flat", "ivf_pq"]
SHA = "ab" * 32
OTHER_SHA = "cd" * 32


def _save(index: FaissIndex, folder: Path, name: str = "clips") -> IndexManifest:
    manifest = manifest_for(
        index,
        name=name,
        encoder="echo-video-tiny",
        checkpoint_sha256=SHA,
        source="clips",
        preprocessing={"frames": 16, "size": 64},
    )
    save_index(index, folder, manifest)
    return manifest


@pytest.mark.parametrize("kind", KINDS)
def test_save_then_mmap_load_gives_identical_results(tmp_path: Path, data: Data, kind: str) -> None:
    index = build_index(data.vectors, data.ids, kind=kind)
    if kind == "hnsw":
        index.remove(data.ids[:50])  # tombstones must survive the round trip
    _save(index, tmp_path / "ix")
    loaded, manifest = load_index(tmp_path / "ix", expect_encoder="echo-video-tiny", expect_checkpoint_sha256=SHA)
    assert isinstance(loaded, FaissIndex) and loaded.is_mapped
    assert manifest.kind == kind and manifest.count == len(index) == len(loaded)
    assert loaded.params == index.params
    for flt in (None, SearchFilter(allowed_ids=data.ids[::100]), SearchFilter(excluded_ids=data.ids[:300])):
        s1, i1 = index.search(data.queries, 10, filter=flt)
        s2, i2 = loaded.search(data.queries, 10, filter=flt)
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(s1, s2)

    # Changing a memory-mapped index reads a private copy first; the files on disk stay as saved.
    loaded.remove(data.ids[100:110])
    loaded.add(np.array([7, 8], dtype=np.int64), data.queries[:2])
    assert not loaded.is_mapped and len(loaded) == len(index) - 8
    assert loaded.search(data.queries[:1], 1)[1][0, 0] == 7
    again, _ = load_index(tmp_path / "ix")
    assert len(again) == len(index)


@pytest.mark.parametrize("mmap", [True, False])
def test_saving_over_a_mapped_folder(tmp_path: Path, data: Data, mmap: bool) -> None:
    index = build_index(data.vectors, data.ids, kind="flat")
    manifest = _save(index, tmp_path / "ix")
    loaded, _ = load_index(tmp_path / "ix", mmap=mmap)
    assert isinstance(loaded, FaissIndex)
    loaded.remove(data.ids[:5])
    save_index(loaded, tmp_path / "ix", manifest.model_copy(update={"count": len(loaded)}))
    reread, m2 = load_index(tmp_path / "ix")
    assert len(reread) == m2.count == data.ids.size - 5
    assert not np.isin(reread.search(data.queries, 10)[1], data.ids[:5]).any()


def test_manifest_mismatch_is_an_error(tmp_path: Path, data: Data) -> None:
    _save(build_index(data.vectors[:50], data.ids[:50], kind="flat"), tmp_path / "ix", name="clips-main")
    with pytest.raises(ManifestMismatchError, match=r"encoder 'echo-video-tiny' but encoder 'echoprime-mvit'") as e:
        load_index(tmp_path / "ix", expect_encoder="echoprime-mvit")
    assert "rag index build" in str(e.value) and "--name clips-main" in str(e.value)
    with pytest.raises(ManifestMismatchError, match=rf"checkpoint sha256 {SHA[:12]}… but checkpoint {OTHER_SHA[:12]}"):
        load_index(tmp_path / "ix", expect_encoder="echo-video-tiny", expect_checkpoint_sha256=OTHER_SHA)
    with pytest.raises(ManifestMismatchError, match="holds 32-d vectors but the encoder in use makes 512-d"):
        load_index(tmp_path / "ix", expect_dim=512)


def test_manifest_must_describe_the_index(tmp_path: Path, data: Data) -> None:
    index = build_index(data.vectors[:50], data.ids[:50], kind="flat")
    manifest = manifest_for(index, name="x", encoder="e", checkpoint_sha256=SHA, source="clips")
    with pytest.raises(VectorIndexError, match="count: manifest 49 vs index 50"):
        save_index(index, tmp_path / "ix", manifest.model_copy(update={"count": 49}))
    with pytest.raises(VectorIndexError, match="source"):
        manifest_for(index, name="x", encoder="e", checkpoint_sha256=SHA, source="videos")
    with pytest.raises(VectorIndexError, match="checkpoint_sha256"):
        manifest_for(index, name="x", encoder="e", checkpoint_sha256="abc", source="clips")


def test_manifest_is_strict_json(tmp_path: Path, data: Data) -> None:
    index = build_index(data.vectors[:50], data.ids[:50], kind="flat")
    _save(index, tmp_path / "ix")
    raw = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    assert raw["metric"] == "inner_product" and raw["normalisation"] == "l2" and raw["backend"] == "faiss"
    assert raw["dim"] == 32 and raw["count"] == 50 and raw["preprocessing"] == {"frames": 16, "size": 64}
    raw["colour"] = "blue"
    (tmp_path / "ix" / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(VectorIndexError, match="colour"):
        read_manifest(tmp_path / "ix")


def test_broken_folders_are_reported(tmp_path: Path, data: Data) -> None:
    with pytest.raises(VectorIndexError, match=r"No index at .*rag index build"):
        load_index(tmp_path / "nothing")
    index = build_index(data.vectors[:50], data.ids[:50], kind="flat")
    _save(index, tmp_path / "ix")
    (tmp_path / "ix" / "ids.npy").unlink()
    with pytest.raises(VectorIndexError, match=r"ids.npy is missing"):
        load_index(tmp_path / "ix")
    _save(index, tmp_path / "ix")
    np.save(tmp_path / "ix" / "ids.npy", data.ids[:40])
    with pytest.raises(VectorIndexError, match="do not belong together"):
        load_index(tmp_path / "ix")
    _save(index, tmp_path / "ix")
    (tmp_path / "ix" / "index.faiss").write_bytes(b"not an index")
    with pytest.raises(VectorIndexError, match="cannot be read by FAISS"):
        load_index(tmp_path / "ix")
    hnsw = build_index(data.vectors[:50], data.ids[:50], kind="hnsw")
    manifest = _save(hnsw, tmp_path / "h")
    (tmp_path / "h" / "manifest.json").write_text(manifest.model_copy(update={"kind": "flat"}).model_dump_json())
    with pytest.raises(VectorIndexError, match="holds a IndexHNSWFlat, not the flat index"):
        load_index(tmp_path / "h")


def test_changed_files_under_a_mapped_index_are_refused(tmp_path: Path, data: Data) -> None:
    index = build_index(data.vectors[:50], data.ids[:50], kind="flat")
    _save(index, tmp_path / "ix")
    loaded, _ = load_index(tmp_path / "ix")
    other = build_index(data.vectors[:60], data.ids[:60], kind="flat")
    other.save(tmp_path / "ix")
    os.utime(tmp_path / "ix" / "index.faiss", (1, 1))
    with pytest.raises(VectorIndexError, match="changed since this index was memory-mapped"):
        loaded.remove(data.ids[:1])
