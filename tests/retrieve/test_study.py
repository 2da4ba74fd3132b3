from __future__ import annotations

import numpy as np
import pytest

from rag.core.errors import RetrievalError
from rag.retrieve.study import StudyIndex, clip_section_weights, study_section_embeddings
from rag.retrieve.weights import ViewWeights
from rag.vocab.sections import ECHO_SECTIONS
from rag.vocab.views import COARSE_VIEWS


def _weights() -> ViewWeights:
    """Left Ventricle: A4C 1, A2C 0.5; IVC: Subcostal 1; every other section: A4C 1."""
    table: dict[str, dict[str, float]] = {s: {"A4C": 1.0} for s in ECHO_SECTIONS}
    table["Left Ventricle"] = {"A4C": 1.0, "A2C": 0.5}
    table["IVC"] = {"Subcostal": 1.0}
    return ViewWeights.from_mapping(table)


def _probs(**p: float) -> np.ndarray:
    row = np.zeros(len(COARSE_VIEWS))
    for view, value in p.items():
        row[COARSE_VIEWS.index(view)] = value
    return row


# Three clips: an A4C, an A2C, and one the view head splits between A4C and SSN.
X = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], np.float32)
P = np.stack([_probs(A4C=1.0), _probs(A2C=1.0), _probs(A4C=0.5, SSN=0.5)])
LV = ECHO_SECTIONS.index("Left Ventricle")
IVC = ECHO_SECTIONS.index("IVC")


def test_soft_weighting_by_hand() -> None:
    # LV weights: clip 1 -> 1, clip 2 -> 0.5, clip 3 -> 0.5 x 1 + 0.5 x 0 = 0.5
    # weighted mean = ([1, 0] + 0.5 [0, 1] + 0.5 [0.6, 0.8]) / 2 = [0.65, 0.45] -> normalised
    e = study_section_embeddings(X, P, _weights())
    expected = np.array([0.65, 0.45]) / np.hypot(0.65, 0.45)
    assert np.allclose(e.vectors[LV], expected, atol=1e-6)
    assert e.evidence[LV] == pytest.approx(2.0)
    assert e.vectors.dtype == np.float32 and e.vectors.shape == (15, 2)


def test_hard_weighting_takes_the_argmax_view() -> None:
    # clip 3's tie A4C / SSN goes to the first class (A4C) -> weight 1: [1, 0] + 0.5 [0, 1] + [0.6, 0.8]
    e = study_section_embeddings(X, P, _weights(), hard=True)
    expected = np.array([1.6, 1.3]) / np.hypot(1.6, 1.3)
    assert np.allclose(e.vectors[LV], expected, atol=1e-6)
    assert e.evidence[LV] == pytest.approx(2.5)
    assert np.allclose(clip_section_weights(P, _weights(), hard=True)[:, LV], [1.0, 0.5, 1.0])


def test_section_without_an_informing_view_has_no_evidence() -> None:
    e = study_section_embeddings(X, P, _weights())
    assert e.no_evidence == ["IVC"]
    assert not e.has_evidence[IVC] and np.all(e.vectors[IVC] == 0)
    assert np.allclose(np.linalg.norm(e.vectors[e.has_evidence], axis=1), 1.0)


def test_views_named_in_another_order() -> None:
    order = list(reversed(COARSE_VIEWS))
    same = study_section_embeddings(X, P[:, ::-1], _weights(), views=order)
    assert np.allclose(same.vectors, study_section_embeddings(X, P, _weights()).vectors)
    with pytest.raises(RetrievalError, match="view_probs must have shape"):
        study_section_embeddings(X, P[:, :5], _weights())


def test_study_index_matches_per_study_embeddings() -> None:
    rng = np.random.default_rng(1)
    n = 12
    vectors = rng.normal(size=(n, 6)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    probs = rng.dirichlet(np.ones(11), size=n)
    studies = np.array([7, 3, 7, 9, 3, 3, 9, 7, 7, 3, 9, 7])
    index = StudyIndex(np.arange(100, 100 + n), vectors, probs, studies, ViewWeights.default())
    assert list(index.study_ids) == [3, 7, 9] and 7 in index and 8 not in index
    for section in ("Left Ventricle", "Aortic Valve", "IVC"):
        ids, matrix, _ = index.section_matrix(section)
        for row, study in enumerate(ids):
            mine = studies == study
            direct = study_section_embeddings(vectors[mine], probs[mine], ViewWeights.default())
            assert np.allclose(matrix[row], direct.vector(section), atol=1e-5)
            assert np.allclose(index.get(int(study)).vector(section), direct.vector(section), atol=1e-5)
