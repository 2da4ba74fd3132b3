from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from rag.core.errors import RetrievalError
from rag.retrieve.fit import fit_view_weights, split_patients
from rag.retrieve.retriever import CaseRetriever
from rag.retrieve.weights import ViewWeights
from rag.vocab.views import COARSE_VIEWS
from tests.retrieve._fake import FakeArchive

D = 16
NOISE_VIEWS = ("A2C", "Parasternal_Long", "Subcostal")


@pytest.fixture
def clustered(tmp_path: Path) -> CaseRetriever:
    """24 one-study patients in 4 kinds. A study's Left Ventricle text and its A4C clip point to its
    kind's direction; its A2C, PLAX and Subcostal clips are noise. Only A4C should inform the section."""
    rng = np.random.default_rng(0)
    a = FakeArchive(tmp_path, dim=D)
    for i in range(24):
        key = f"s{i}"
        centre = np.eye(D)[i % 4]
        a.study(key, f"p{i}", dt.date(2020, 1, 1) + dt.timedelta(days=i))
        a.clip(key, "A4C", centre + 0.3 * rng.normal(size=D) / np.sqrt(D))
        for view in NOISE_VIEWS:
            a.clip(key, view, rng.normal(size=D))
        a.section(key, "Left Ventricle", f"kind {i % 4}", centre + 0.3 * rng.normal(size=D) / np.sqrt(D))
    store = a.build()
    return CaseRetriever(store, a.folder, ViewWeights.uniform(), index_kind="flat")


def test_fit_learns_which_view_informs_a_section(clustered: CaseRetriever, tmp_path: Path) -> None:
    result = fit_view_weights(clustered, val_fraction=0.25, seed=0, steps=120)
    lv = result.weights.row("Left Ventricle")
    a4c = COARSE_VIEWS.index("A4C")
    noise = [COARSE_VIEWS.index(v) for v in NOISE_VIEWS]
    assert lv[a4c] == pytest.approx(1.0)
    assert lv[noise].max() < 0.5  # started at 1.0 (uniform)
    fit = result.sections["Left Ventricle"]
    assert (fit.n_train, fit.n_val) == (18, 6)
    assert fit.val_after > fit.val_before and fit.train_after > fit.train_before
    assert fit.val_top1_cosine_after >= fit.val_top1_cosine_before
    # sections without texts keep their starting row
    assert np.array_equal(result.weights.row("IVC"), ViewWeights.uniform().row("IVC"))
    path = result.weights.save(tmp_path / "learned.yaml", header=result.lines())
    assert ViewWeights.load(path) == result.weights
    assert path.read_text().startswith("# Learned from 18 training studies")
    assert "Left Ventricle" in result.table()


def test_fit_needs_disjoint_patients(clustered: CaseRetriever) -> None:
    ids = sorted(clustered.catalog.studies)
    with pytest.raises(RetrievalError, match="both the training and held-out"):
        fit_view_weights(clustered, train_studies=ids[:10], val_studies=ids[5:12], steps=1)


def test_split_patients_keeps_patients_whole() -> None:
    study_patient = {s: s // 3 for s in range(60)}  # 20 patients, 3 studies each
    test, val, train = split_patients(study_patient, (0.25, 0.25), seed=4)
    assert (len(test), len(val), len(train)) == (15, 15, 30)
    groups = [{study_patient[s] for s in g} for g in (test, val, train)]
    assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
    assert split_patients(study_patient, (0.25, 0.25), seed=4) == [test, val, train]
    with pytest.raises(RetrievalError, match="sum to at most 1"):
        split_patients(study_patient, (0.8, 0.4))
