"""Views and modalities in Milvus Lite: stored, filtered inside the search (partition key ``view``), migrated."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from rag.core.errors import IndexInputError, VectorIndexError
from rag.index import SearchFilter, build_index, load_index, manifest_for, save_index
from rag.vocab.views import COARSE_VIEWS
from tests.index._data import Data, clustered
from tests.index.test_attributes import catalog_of

pytest.importorskip("pymilvus", reason="needs the milvus extra: pip install 'echo-rag[milvus]'")
pytest.importorskip("milvus_lite", reason="needs the milvus extra: pip install 'echo-rag[milvus]'")

from rag.index.milvus_index import MilvusIndex

pytestmark = pytest.mark.integration

SHA = "cd" * 32
VIEWS = np.array(["A4C", "A2C", "Parasternal_Long", "", "A4C", "SSN"])


@pytest.fixture(scope="module")
def rows() -> Data:
    return clustered(360, 16, clusters=12, q=12, seed=3)


@pytest.fixture(scope="module")
def views(rows: Data) -> np.ndarray:
    return VIEWS[np.arange(rows.ids.size) % VIEWS.size]


@pytest.fixture(scope="module")
def milvus(tmp_path_factory: pytest.TempPathFactory, rows: Data, views: np.ndarray) -> Iterator[MilvusIndex]:
    index = MilvusIndex(str(tmp_path_factory.mktemp("milvus") / "lite.db"), "rag_clips", rows.dim, "flat")
    modality = np.where(views == "", "still_image", "echo_video")
    index.add(rows.ids, rows.vectors, attributes={"view": views, "modality": modality})
    yield index
    index.close()


def test_attributes_are_stored_and_view_is_the_partition_key(
    milvus: MilvusIndex, rows: Data, views: np.ndarray
) -> None:
    got = milvus.get_attributes(rows.ids[::-7])
    assert got["view"].tolist() == views[::-7].tolist()
    assert set(got["modality"].tolist()) == {"echo_video", "still_image"}
    fields = {f["name"]: f for f in milvus._client.describe_collection("rag_clips")["fields"]}
    assert fields["view"].get("is_partition_key") and not fields["modality"].get("is_partition_key")
    assert milvus.has_attributes and milvus.consistency_level == "Strong"


FILTERS = {
    "A4C": lambda ids: SearchFilter(views={"A4C"}),
    "two-views-and-modality": lambda ids: SearchFilter(views=["A2C", "SSN"], modalities=["echo_video"]),
    "modality": lambda ids: SearchFilter(modalities=["still_image"]),
    "with-allowed-and-excluded-ids": lambda ids: SearchFilter(
        views={"A4C"}, allowed_ids=ids[::3], excluded_ids=ids[::5]
    ),
}


@pytest.mark.parametrize("name", list(FILTERS))
def test_attribute_filters_equal_brute_force(milvus: MilvusIndex, rows: Data, views: np.ndarray, name: str) -> None:
    flt = FILTERS[name](rows.ids)
    keep = np.ones(rows.ids.size, bool)
    if flt.views is not None:
        keep &= np.isin(views, list(flt.views))
    if flt.modalities is not None:
        keep &= np.isin(np.where(views == "", "still_image", "echo_video"), list(flt.modalities))
    if flt.allowed_ids is not None:
        keep &= np.isin(rows.ids, flt.allowed_ids)
    if flt.excluded_ids is not None:
        keep &= ~np.isin(rows.ids, flt.excluded_ids)
    scores, ids = milvus.search(rows.queries, 8, filter=flt)
    want_scores, want_ids = rows.exact(8, keep)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    # the same filter, resolved to IDs for FAISS, gives the same answer
    faiss_ids = build_index(rows.vectors, rows.ids, kind="flat").search(
        rows.queries,
        8,
        filter=flt.resolved(rows.ids, {"view": views, "modality": milvus.get_attributes(rows.ids)["modality"]}),
    )[1]
    np.testing.assert_array_equal(faiss_ids, ids)


def test_filters_that_match_nothing(milvus: MilvusIndex, rows: Data) -> None:
    for flt in (SearchFilter(views=[]), SearchFilter(views={"Subcostal"}), SearchFilter(modalities=["report_section"])):
        scores, ids = milvus.search(rows.queries[:2], 4, filter=flt)
        assert (ids == -1).all() and np.isneginf(scores).all()


def test_updates_keep_or_move_attributes_and_bad_ones_write_nothing(tmp_path: Path, rows: Data) -> None:
    index = MilvusIndex(str(tmp_path / "lite.db"), "rag_changes", rows.dim, "flat")
    ids, x = rows.ids[:20], rows.vectors[:20]
    for bad, message in [
        (
            {"view": ["A4CH"] * 20},
            r"Unknown view\(s\) 'A4CH' in attributes\['view'\] \(20 rows\). Did you mean 'A4C'\?",
        ),
        ({"view": ["A4C"] * 19}, r"one name per ID \(20\), got shape \(19,\)"),
        ({"views": ["A4C"] * 20}, r"Unknown attribute\(s\) \['views'\]"),
    ]:
        with pytest.raises(IndexInputError, match=message):
            index.add(ids, x, attributes=bad)
        assert len(index) == 0
    index.add(ids, x, attributes={"view": ["A2C"] * 20})  # modality not given: stored as ''
    assert index.get_attributes(ids[:1]) == {"view": np.array(["A2C"]), "modality": np.array([""])}
    with pytest.raises(IndexInputError, match="Unknown modality"):
        index.update(ids[:2], rows.queries[:2], attributes={"modality": ["echo_video", "cine"]})
    np.testing.assert_allclose(index.get_vectors(ids[:2]), x[:2], atol=1e-6)
    index.update(ids[:2], x[:2])  # no attributes: the stored ones stay
    assert index.get_attributes(ids[:2])["view"].tolist() == ["A2C", "A2C"]
    index.update(ids[:2], x[:2], attributes={"view": ["SSN", "SSN"]})  # another partition
    assert len(index) == 20
    _, hits = index.search(rows.queries[:3], 5, filter=SearchFilter(views={"SSN"}))
    assert (np.sort(hits[:, :2], axis=1) == np.sort(ids[:2])).all() and (hits[:, 2:] == -1).all()
    assert index.get_attributes(ids[:2])["modality"].tolist() == ["", ""]
    index.close()


def test_consistency_level_is_a_recorded_parameter(tmp_path: Path, rows: Data) -> None:
    folder = tmp_path / "indexes" / "clips"
    index = MilvusIndex(str(folder / "milvus.db"), "rag_clips", rows.dim, "hnsw", consistency_level="Bounded")
    index.add(rows.ids[:50], rows.vectors[:50], attributes={"view": ["A4C"] * 50})
    assert index.consistency_level == "Bounded" and index.params["consistency_level"] == "Bounded"
    assert index.params["num_partitions"] == 16
    params = index.params | {"uri": "milvus.db"}
    save_index(
        index,
        folder,
        manifest_for(index, name="clips", encoder="e", checkpoint_sha256=SHA, source="clips", build_params=params),
    )
    index.close()
    assert json.loads((folder / "manifest.json").read_text())["build_params"]["consistency_level"] == "Bounded"
    loaded, _ = load_index(folder)
    assert isinstance(loaded, MilvusIndex) and loaded.consistency_level == "Bounded"
    assert loaded.search(rows.vectors[:1], 1, filter=SearchFilter(views={"A4C"}))[1][0, 0] == rows.ids[0]
    loaded.close()
    with pytest.raises(VectorIndexError, match=r"consistency_level.*'Strong', 'Bounded', 'Session' or 'Eventually'"):
        MilvusIndex(str(tmp_path / "other.db"), "rag_x", 8, consistency_level="Bouned")


def test_a_collection_without_attribute_fields_still_works_and_says_how_to_get_them(tmp_path: Path, rows: Data) -> None:
    from pymilvus import DataType, MilvusClient

    uri = str(tmp_path / "old.db")
    client = MilvusClient(uri=uri)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=rows.dim)
    params = client.prepare_index_params()
    params.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
    client.create_collection("rag_old", schema=schema, index_params=params)
    client.close()
    index = MilvusIndex(uri, "rag_old", rows.dim)
    assert not index.has_attributes
    index.add(rows.ids[:10], rows.vectors[:10])
    index.update(rows.ids[:1], rows.vectors[:1])
    with pytest.raises(VectorIndexError, match=r"made without the fields \['view', 'modality'\].*rebuild it"):
        index.add(rows.ids[10:12], rows.vectors[10:12], attributes={"view": ["A4C", "A4C"]})
    with pytest.raises(VectorIndexError, match="cannot filter on views"):
        index.search(rows.queries, 3, filter=SearchFilter(views={"A4C"}))
    assert len(index) == 10
    index.close()


def _embeddings(root: Path, rows: Data, probs: np.ndarray) -> Path:
    folder = root / "embeddings" / f"echo-video-tiny@{SHA[:12]}"
    folder.mkdir(parents=True)
    np.save(folder / "clips.ids.npy", rows.ids)
    np.save(folder / "clips.vectors.npy", rows.vectors)
    np.save(folder / "clips.view_probs.npy", probs)
    manifest = {
        "encoder": "echo-video-tiny",
        "checkpoint_sha256": SHA,
        "dim": rows.dim,
        "view_classes": list(COARSE_VIEWS),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_build_and_migrate_fill_views_from_the_catalog_else_the_view_head(
    workspace: Path, rows: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from rag.cli.index import index_app
    from rag.index.migrate import migrate_index

    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    rng = np.random.default_rng(0)
    probs = rng.random((rows.ids.size, len(COARSE_VIEWS))).astype(np.float32)
    emb = _embeddings(workspace, rows, probs)
    predicted = np.asarray(COARSE_VIEWS)[probs.argmax(axis=1)]
    declared = np.where(np.arange(rows.ids.size) % 2 == 0, COARSE_VIEWS.index("SSN"), -1)
    expected = np.where(declared >= 0, "SSN", predicted)
    catalog_of(rows.ids, declared).save(workspace / "indexes" / "library" / "catalog")  # what `rag index library` saves

    runner = CliRunner()
    out = runner.invoke(index_app, ["build", "--embeddings", str(emb), "--name", "clips", "--kind", "flat"])
    assert out.exit_code == 0, out.output
    out = runner.invoke(index_app, ["migrate", "clips", "--to", "milvus"])
    assert out.exit_code == 0, out.output
    assert f"views known={rows.ids.size}" in out.output
    copy, manifest = load_index(workspace / "indexes" / "clips-milvus")
    assert isinstance(copy, MilvusIndex) and manifest.build_params["consistency_level"] == "Strong"
    got = copy.get_attributes(rows.ids)
    assert got["view"].tolist() == expected.tolist() and set(got["modality"].tolist()) == {"echo_video"}
    copy.close()
    out = runner.invoke(index_app, ["build", "--embeddings", str(emb), "--backend", "milvus", "--name", "m"])
    assert out.exit_code == 0, out.output
    built, _ = load_index(workspace / "indexes" / "m")
    assert (
        isinstance(built, MilvusIndex) and built.get_attributes(rows.ids[:4])["view"].tolist() == expected[:4].tolist()
    )
    built.close()

    # without a catalog the view head decides; the embeddings folder gone, views stay unknown
    done = migrate_index(workspace / "indexes" / "clips", workspace / "indexes" / "head", "milvus")
    head, _ = load_index(done.target)
    assert (
        isinstance(head, MilvusIndex) and head.get_attributes(rows.ids[:5])["view"].tolist() == predicted[:5].tolist()
    )
    head.close()
    (emb / "clips.view_probs.npy").unlink()
    done = migrate_index(workspace / "indexes" / "clips", workspace / "indexes" / "none", "milvus")
    assert done.with_view == 0
