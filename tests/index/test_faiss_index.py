"""FaissIndex: exact and approximate search, in-search filters, deletion, updates and input checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rag.core.errors import IndexInputError, VectorIndexError
from rag.index import FaissIndex, SearchFilter, VectorIndex, build_index, choose_kind, faiss_select
from rag.index import faiss_index as fi
from tests.index._data import Data, recall

KINDS = ["flat", "hnsw", "ivf_flat", "ivf_pq"]
APPROX = ["hnsw", "ivf_flat", "ivf_pq"]


@pytest.fixture(scope="module")
def built(data: Data) -> dict[str, FaissIndex]:
    """One index of each kind over the shared data (read-only: tests that change an index build their own)."""
    return {kind: build_index(data.vectors, data.ids, kind=kind) for kind in KINDS}


def test_protocol_and_basics(built: dict[str, FaissIndex], data: Data) -> None:
    for kind, index in built.items():
        assert isinstance(index, VectorIndex)
        assert index.kind == kind and index.dim == data.dim and len(index) == data.ids.size
        assert np.array_equal(index.ids(), data.ids)
        assert int(data.ids[3]) in index and -5 not in index


def test_flat_is_exact(built: dict[str, FaissIndex], data: Data) -> None:
    scores, ids = built["flat"].search(data.queries, 10)
    want_scores, want_ids = data.exact(10)
    assert ids.dtype == np.int64 and scores.dtype == np.float32 and ids.shape == (40, 10)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)


@pytest.mark.parametrize("kind", APPROX)
def test_recall_against_exact(built: dict[str, FaissIndex], data: Data, kind: str) -> None:
    scores, ids = built[kind].search(data.queries, 10)
    assert recall(ids, data.exact(10)[1]) >= 0.95
    assert np.all(np.diff(scores, axis=1) <= 1e-6), "scores must come best first"


@pytest.mark.parametrize("kind", KINDS)
def test_stored_vectors_find_themselves(built: dict[str, FaissIndex], data: Data, kind: str) -> None:
    rows = np.arange(0, data.ids.size, 97)
    scores, ids = built[kind].search(data.vectors[rows], 1)
    np.testing.assert_array_equal(ids[:, 0], data.ids[rows])
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-3 if kind == "ivf_pq" else 1e-5)


def _one_percent(data: Data, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(data.ids, data.ids.size // 100, replace=False))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("exact_below", [4096, 0], ids=["exact-subset", "in-search-selector"])
def test_allowed_ids_one_percent_returns_k(data: Data, kind: str, exact_below: int) -> None:
    """1 % of the collection allowed: k hits whenever k match, through either filter path."""
    index = build_index(data.vectors, data.ids, kind=kind, exact_below=exact_below)
    allowed = _one_percent(data)
    scores, ids = index.search(data.queries, 10, filter=SearchFilter(allowed_ids=allowed))
    assert (ids >= 0).all(), "k hits expected: 40 items pass the filter"
    assert np.isin(ids, allowed).all()
    truth = data.exact(10, keep=np.isin(data.ids, allowed))[1]
    assert recall(ids, truth) >= (0.95 if kind != "ivf_pq" else 0.9)
    assert np.isfinite(scores).all()


@pytest.mark.parametrize("kind", APPROX)
def test_hnsw_and_ivf_restrictive_filter_falls_back_to_exact(
    data: Data, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a tiny search budget the in-search filter collects too few hits; the exhaustive pass fills them."""
    params: dict[str, Any] = {"ef_search": 10} if kind == "hnsw" else {"nprobe": 1}
    index = build_index(data.vectors, data.ids, kind=kind, exact_below=0, **params)
    calls: list[int] = []
    exhaustive = index._search_exhaustive

    def spy(q: np.ndarray, k: int, sel: object) -> tuple[np.ndarray, np.ndarray]:
        calls.append(q.shape[0])
        return exhaustive(q, k, sel)

    monkeypatch.setattr(index, "_search_exhaustive", spy)
    allowed = _one_percent(data, seed=1)
    _, ids = index.search(data.queries, 10, filter=SearchFilter(allowed_ids=allowed))
    assert calls and calls[0] > 0, "the approximate pass should have come back short for some queries"
    assert (ids >= 0).all() and np.isin(ids, allowed).all()
    truth = data.exact(10, keep=np.isin(data.ids, allowed))[1]
    assert recall(ids, truth) >= 0.9


@pytest.mark.parametrize("kind", KINDS)
def test_excluded_ids(built: dict[str, FaissIndex], data: Data, kind: str) -> None:
    index = built[kind]
    first = index.search(data.queries, 5)[1]
    banned = np.unique(first)
    _, ids = index.search(data.queries, 10, filter=SearchFilter(excluded_ids=banned))
    assert (ids >= 0).all() and not np.isin(ids, banned).any()
    truth = data.exact(10, keep=~np.isin(data.ids, banned))[1]
    assert recall(ids, truth) >= 0.9


@pytest.mark.parametrize("kind", KINDS)
def test_excluding_99_percent_still_returns_k(built: dict[str, FaissIndex], data: Data, kind: str) -> None:
    keep = _one_percent(data, seed=2)
    banned = np.setdiff1d(data.ids, keep)
    _, ids = built[kind].search(data.queries, 10, filter=SearchFilter(excluded_ids=banned))
    assert (ids >= 0).all() and np.isin(ids, keep).all()


@pytest.mark.parametrize("kind", KINDS)
def test_allowed_and_excluded_together(built: dict[str, FaissIndex], data: Data, kind: str) -> None:
    allowed = data.ids[:500]
    excluded = data.ids[:100]
    _, ids = built[kind].search(data.queries, 10, filter=SearchFilter(allowed_ids=allowed, excluded_ids=excluded))
    assert (ids >= 0).all()
    assert np.isin(ids, data.ids[100:500]).all()


@pytest.mark.parametrize("kind", KINDS)
def test_padding_only_when_fewer_than_k_match(built: dict[str, FaissIndex], data: Data, kind: str) -> None:
    allowed = np.concatenate([data.ids[:3], np.array([5, 6], dtype=np.int64)])  # 5, 6: not in the index
    scores, ids = built[kind].search(data.queries[:4], 10, filter=SearchFilter(allowed_ids=allowed))
    assert (ids[:, :3] >= 0).all() and (ids[:, 3:] == -1).all()
    assert np.isneginf(scores[:, 3:]).all() and np.isfinite(scores[:, :3]).all()
    assert set(ids[0, :3].tolist()) == set(data.ids[:3].tolist())
    empty_scores, empty_ids = built[kind].search(data.queries[:2], 4, filter=SearchFilter(allowed_ids=np.array([])))
    assert (empty_ids == -1).all() and np.isneginf(empty_scores).all()


def test_k_larger_than_the_index(data: Data) -> None:
    index = build_index(data.vectors[:7], data.ids[:7], kind="flat")
    scores, ids = index.search(data.queries[:2], 10)
    assert (ids[:, :7] >= 0).all() and (ids[:, 7:] == -1).all() and np.isneginf(scores[:, 7:]).all()


def test_large_filters_use_a_bitmap_selector(data: Data, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faiss_select, "BITMAP_MIN", 100)
    index = build_index(data.vectors, np.arange(data.ids.size, dtype=np.int64), kind="ivf_flat", exact_below=0)
    allowed = np.arange(0, data.ids.size, 3, dtype=np.int64)
    _, ids = index.search(data.queries, 10, filter=SearchFilter(allowed_ids=allowed))
    assert (ids >= 0).all() and (ids % 3 == 0).all()


@pytest.mark.parametrize("kind", KINDS)
def test_remove_and_update(data: Data, kind: str) -> None:
    index = build_index(data.vectors, data.ids, kind=kind, compact_ratio=None)
    top = index.search(data.queries, 3)[1]
    gone = np.unique(top[:, 0])
    assert index.remove(np.concatenate([gone, np.array([1, 2], dtype=np.int64)])) == gone.size
    assert len(index) == data.ids.size - gone.size
    assert index.remove(gone) == 0
    _, after = index.search(data.queries, 10)
    assert not np.isin(after, gone).any()
    _, filtered = index.search(data.queries, 10, filter=SearchFilter(excluded_ids=data.ids[:10]))
    assert not np.isin(filtered, gone).any()

    # Move one live item onto a query: it must now be that query's best hit, and gone from its old place.
    moved = int(np.setdiff1d(data.ids, gone)[0])
    old_vec = data.vectors[np.searchsorted(data.ids, moved)]
    index.update(np.array([moved]), data.queries[:1])
    assert len(index) == data.ids.size - gone.size
    scores, ids = index.search(data.queries[:1], 1)
    assert ids[0, 0] == moved and scores[0, 0] == pytest.approx(1.0, abs=1e-3)
    _, near_old = index.search(old_vec[None, :], 1)
    assert near_old[0, 0] != moved or kind == "ivf_pq"

    # Removed IDs can be added again.
    rows = np.searchsorted(data.ids, gone)
    index.add(gone, data.vectors[rows])
    assert len(index) == data.ids.size


def test_hnsw_tombstones_then_compaction(data: Data) -> None:
    index = build_index(data.vectors, data.ids, kind="hnsw", compact_ratio=0.25)
    index.remove(data.ids[:400])
    assert index.tombstones == 400 and len(index) == data.ids.size - 400
    index.update(data.ids[400:410], data.vectors[400:410][::-1].copy())
    assert index.tombstones == 410 and len(index._nodes) == data.ids.size + 10
    index.remove(data.ids[410:1100])  # 1100 tombstones > 25 % of 4010 nodes: compacted
    assert index.tombstones == 0 and len(index) == data.ids.size - 1090 and len(index._nodes) == len(index)
    gone = np.concatenate([data.ids[:400], data.ids[410:1100]])
    _, ids = index.search(data.queries, 10)
    assert not np.isin(ids, gone).any()
    assert recall(ids, data.exact(10, keep=~np.isin(data.ids, data.ids[:1100]))[1]) >= 0.9
    np.testing.assert_allclose(index.get_vectors(data.ids[2000:2003]), data.vectors[2000:2003], atol=1e-6)


def test_vectors_are_normalised_on_the_way_in(data: Data) -> None:
    index = build_index(data.vectors * 7.5, data.ids, kind="flat")
    scores, ids = index.search(data.vectors[:3] * 0.1, 1)
    np.testing.assert_array_equal(ids[:, 0], data.ids[:3])
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)


def test_input_errors(data: Data) -> None:
    index = build_index(data.vectors[:100], data.ids[:100], kind="flat")
    with pytest.raises(IndexInputError, match=r"shape \(n, 32\)"):
        index.add(np.array([1]), np.ones((1, 16), np.float32))
    with pytest.raises(IndexInputError, match="non-finite"):
        index.add(np.array([1, 2]), np.array([[np.nan] * 32, [1.0] * 32], np.float32))
    with pytest.raises(IndexInputError, match="duplicates"):
        index.add(np.array([1, 1]), np.ones((2, 32), np.float32))
    with pytest.raises(IndexInputError, match=r"already in the index.*update"):
        index.add(data.ids[:2], data.vectors[:2])
    with pytest.raises(IndexInputError, match="non-negative"):
        index.add(np.array([-3]), np.ones((1, 32), np.float32))
    with pytest.raises(IndexInputError, match="integers"):
        index.add(np.array([1.5]), np.ones((1, 32), np.float32))
    with pytest.raises(IndexInputError, match="2 rows but 1 IDs"):
        index.add(np.array([1]), np.ones((2, 32), np.float32))
    with pytest.raises(IndexInputError, match="all-zero"):
        index.add(np.array([1]), np.zeros((1, 32), np.float32))
    with pytest.raises(IndexInputError, match=r"not in the index.*add"):
        index.update(np.array([123]), np.ones((1, 32), np.float32))
    with pytest.raises(IndexInputError, match=r"queries must have shape \(n, 32\).*v\[None, :\]"):
        index.search(np.ones(32, np.float32), 3)
    with pytest.raises(IndexInputError, match="k must be"):
        index.search(data.queries, 0)
    with pytest.raises(IndexInputError, match=r"SearchFilter.allowed_ids"):
        SearchFilter(allowed_ids=np.array(["a"]))
    assert len(index) == 100, "a refused call changes nothing"


def test_configuration_errors() -> None:
    with pytest.raises(VectorIndexError, match=r"Unknown index kind 'hnws'.*'hnsw'"):
        FaissIndex(8, "hnws")
    with pytest.raises(VectorIndexError, match=r"nprobes.*Allowed parameters: \[.*'nprobe'"):
        FaissIndex(8, "ivf_flat", nprobes=3)
    with pytest.raises(VectorIndexError, match=r"device=.cuda.*faiss-gpu"):
        FaissIndex(8, "flat", device="cuda")
    with pytest.raises(VectorIndexError, match="Unknown device"):
        FaissIndex(8, "flat", device="gpu")


def test_choose_kind_thresholds() -> None:
    assert choose_kind(0) == "flat"
    assert choose_kind(fi.FLAT_BELOW - 1) == "flat"
    assert choose_kind(fi.FLAT_BELOW) == "ivf_flat"
    assert choose_kind(fi.IVF_PQ_FROM - 1) == "ivf_flat"
    assert choose_kind(fi.IVF_PQ_FROM) == "ivf_pq"
    assert build_index(np.ones((3, 4), np.float32), np.arange(3)).kind == "flat"


def test_ivf_parameters_are_resolved(built: dict[str, FaissIndex], data: Data) -> None:
    params = built["ivf_pq"].params
    assert params["nlist"] == fi.default_nlist(data.ids.size)
    assert params["nprobe"] == fi.default_nprobe(params["nlist"])
    assert params["pq_m"] == data.dim // 8
    assert "hnsw_m" not in params
    assert fi.default_pq_m(512) == 64 and fi.default_pq_m(30) == 3


def test_ivf_trains_on_first_add(data: Data) -> None:
    index = FaissIndex(data.dim, "ivf_flat")
    assert not index.is_trained
    index.add(data.ids, data.vectors)
    assert index.is_trained and len(index) == data.ids.size
    assert recall(index.search(data.queries, 10)[1], data.exact(10)[1]) >= 0.95


def test_search_parameters_can_change(built: dict[str, FaissIndex], data: Data) -> None:
    index = build_index(data.vectors, data.ids, kind="ivf_flat", nprobe=1)
    low = recall(index.search(data.queries, 10)[1], data.exact(10)[1])
    index.set_search_params(nprobe=index.params["nlist"])
    assert index.params["nprobe"] == index.params["nlist"]
    assert recall(index.search(data.queries, 10)[1], data.exact(10)[1]) == 1.0 >= low
    with pytest.raises(VectorIndexError, match=r"Not search-time parameters: \['nlist'\]"):
        index.set_search_params(nlist=3)
    with pytest.raises(VectorIndexError, match="ef_search"):
        built["hnsw"].set_search_params(ef_search=0)
    no_copies = build_index(data.vectors[:2000], data.ids[:2000], kind="ivf_pq", refine_factor=0)
    with pytest.raises(VectorIndexError, match="float32 copies"):
        no_copies.set_search_params(refine_factor=4)
    assert (
        recall(no_copies.search(data.queries, 10)[1], data.exact(10, keep=np.arange(4000) < 2000)[1]) > 0.3
    )  # PQ order only
