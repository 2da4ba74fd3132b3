"""Row attributes (view, modality) and the filters on them, without Milvus: validation, FAISS, the catalog."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.core.errors import IndexInputError
from rag.index import SearchFilter, build_index
from rag.index.attributes import MODALITIES, attributes_for, check_attributes
from rag.index.catalog import Catalog
from rag.vocab.views import COARSE_VIEWS
from tests.index._data import Data, clustered


def catalog_of(clip_ids: np.ndarray, clip_view: np.ndarray) -> Catalog:
    """A catalog holding only clips (one study) and the views they declared (-1: none)."""
    e = np.zeros(0, np.int64)
    return Catalog(
        study_ids=np.array([1], np.int64),
        study_patient=np.array([1], np.int64),
        study_date=np.array([730000], np.int64),
        pseudonyms={1: "p1"},
        clip_ids=np.asarray(clip_ids, np.int64),
        clip_study=np.ones(len(clip_ids), np.int64),
        clip_view=np.asarray(clip_view, np.int16),
        section_ids=e,
        section_codes=e.astype(np.int16),
        section_study=e,
        meas_study=e,
        meas_name=e.astype(np.int16),
        meas_value=e.astype(np.float64),
        measurement_names=[],
        measurement_units=[],
    )


@pytest.fixture(scope="module")
def tiny() -> Data:
    return clustered(300, 16, clusters=10, q=8, seed=5)


def test_filter_names_are_checked_and_sorted() -> None:
    flt = SearchFilter(views=["A4C", "A2C", "A4C"], modalities="echo_video")
    assert flt.views == ("A2C", "A4C") and flt.modalities == ("echo_video",)
    assert not flt.is_noop and flt.has_attributes and SearchFilter().is_noop
    with pytest.raises(IndexInputError, match=r"Unknown view 'A4CH' in SearchFilter.views. Did you mean 'A4C'\?"):
        SearchFilter(views=["A4CH"])
    with pytest.raises(IndexInputError, match=r"Unknown modality 'video'.*Available: \['echo_video'"):
        SearchFilter(modalities=["video"])
    with pytest.raises(IndexInputError, match="must be a collection of names"):
        SearchFilter(views=3)  # type: ignore[arg-type]


def test_bad_attributes_name_the_problem() -> None:
    ok = check_attributes({"view": np.array(["A4C", ""]), "modality": ["echo_video", "echo_video"]}, 2)
    assert ok == {"view": ["A4C", ""], "modality": ["echo_video", "echo_video"]}
    with pytest.raises(IndexInputError, match=r"Unknown attribute\(s\) \['colour'\]"):
        check_attributes({"colour": ["red"]}, 1)
    with pytest.raises(IndexInputError, match=r"one name per ID \(3\), got shape \(2,\)"):
        check_attributes({"view": ["A4C", "A2C"]}, 3)
    with pytest.raises(IndexInputError, match=r"Unknown view\(s\) 'PLAX' .*Did you mean 'Parasternal_Long'\?.*or ''"):
        check_attributes({"view": ["PLAX", "A4C"]}, 2)
    with pytest.raises(IndexInputError, match="Unknown modality"):
        check_attributes({"modality": [3]}, 1)


def test_attributes_from_the_catalog_else_the_view_head() -> None:
    ids = np.array([10, 11, 12, 13], np.int64)
    catalog = catalog_of(np.array([10, 11, 12]), np.array([COARSE_VIEWS.index("SSN"), -1, -1]))
    probs = np.zeros((4, 3), np.float32)
    probs[:, 1] = 1.0  # the head says A4C everywhere ...
    probs[2] = 0.0  # ... but has no prediction for clip 12
    got = attributes_for("clips", ids, catalog=catalog, view_probs=probs, view_classes=["A2C", "A4C", "Other"])
    assert got["view"].tolist() == ["SSN", "A4C", "", "A4C"]
    assert got["modality"].tolist() == ["echo_video"] * 4
    sections = attributes_for("sections", ids, catalog=catalog)
    assert sections["view"].tolist() == [""] * 4 and sections["modality"].tolist() == ["report_section"] * 4
    assert set(MODALITIES) == {"echo_video", "still_image", "report_section"}
    with pytest.raises(IndexInputError, match="Unknown source 'videos'"):
        attributes_for("videos", ids)


def test_faiss_refuses_attribute_filters_and_takes_them_resolved(tiny: Data) -> None:
    views = np.array(["A4C", "A2C", ""])[np.arange(tiny.ids.size) % 3]
    index = build_index(tiny.vectors, tiny.ids, kind="flat")
    flt = SearchFilter(views={"A4C"}, excluded_ids=tiny.ids[:30])
    with pytest.raises(IndexInputError, match=r"FAISS index stores no view.*filter\.resolved\(ids"):
        index.search(tiny.queries, 5, filter=flt)
    resolved = flt.resolved(tiny.ids, {"view": views})
    assert resolved.views is None and resolved.allowed_ids is not None
    scores, ids = index.search(tiny.queries, 5, filter=resolved)
    keep = (views == "A4C") & ~np.isin(tiny.ids, tiny.ids[:30])
    want_scores, want_ids = tiny.exact(5, keep)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    narrowed = SearchFilter(allowed_ids=tiny.ids[:60], views=["A2C"]).resolved(tiny.ids, {"view": views})
    assert np.array_equal(narrowed.allowed_ids, tiny.ids[:60][views[:60] == "A2C"])
    with pytest.raises(IndexInputError, match=r"the filter names \['modality'\]"):
        SearchFilter(modalities=["echo_video"]).resolved(tiny.ids, {"view": views})


def test_the_cli_reads_declared_views_from_the_store_else_the_library(workspace: Path) -> None:
    from rag.cli.index import _config, _known_catalog
    from rag.store import open_store

    cfg = _config(None)
    assert _known_catalog(cfg) is None  # neither a store nor a case library: views from the view head only
    catalog_of(np.array([4, 5]), np.array([2, -1])).save(cfg.indexes_dir / "library" / "catalog")
    saved = _known_catalog(cfg)
    assert saved is not None and saved.declared_views == {4: "A4C"}
    open_store(cfg.db_url).close()  # an (empty) store now exists and is preferred
    from_store = _known_catalog(cfg)
    assert from_store is not None and len(from_store.clip_ids) == 0
