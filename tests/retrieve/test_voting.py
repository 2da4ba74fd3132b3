from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from rag.core.errors import RetrievalError
from rag.retrieve.retriever import CaseRetriever
from rag.retrieve.thresholds import Thresholds, best_threshold, thresholds_path
from rag.retrieve.voting import NeighbourVoter, Prediction, fit_thresholds
from rag.retrieve.weights import ViewWeights
from rag.vocab.findings import PHENOTYPES
from rag.vocab.sections import ECHO_SECTIONS
from tests.retrieve._fake import FakeArchive

D = 8
E = np.eye(D)
N = 6  # studies per group


def _weights() -> ViewWeights:
    """Every section is read from A2C clips except Pericardium, read from Subcostal ones."""
    table: dict[str, dict[str, float]] = {s: {"A2C": 1.0} for s in ECHO_SECTIONS}
    table["Pericardium"] = {"Subcostal": 1.0}
    return ViewWeights.from_mapping(table, name="split")


@pytest.fixture
def fake(tmp_path: Path) -> FakeArchive:
    """Group A: LV texts near e0, less so as i grows (LVEF 20 + i, severe dysfunction), no effusion
    (Pericardium texts near e2).
    Group B: LV texts near e3 (LVEF 65, normal), large effusions (Pericardium texts near e1).

    The query Q has an A2C clip along e0 and a Subcostal clip along e1: its LV neighbours are group A,
    its Pericardium neighbours group B. Validation studies V0-V3 (own texts along e6) look like Q
    (V0, V1: effusion in their report) or like group A in the Pericardium (V2, V3: none).
    """
    a = FakeArchive(tmp_path, dim=D)
    for i in range(N):
        key = f"a{i}"
        a.study(key, f"pa{i}").clip(key, "A2C", E[4])
        a.section(key, "Left Ventricle", "Severely reduced left ventricular systolic function.", E[0] + 0.05 * i * E[5])
        a.section(key, "Pericardium", "No pericardial effusion.", E[2] + 0.05 * i * E[5])
        a.measure(key, "lvef", 20.0 + i)
        key = f"b{i}"
        a.study(key, f"pb{i}").clip(key, "A2C", E[4])
        a.section(key, "Left Ventricle", "Normal left ventricular systolic function.", E[3] + 0.05 * i * E[5])
        a.section(key, "Pericardium", "A large pericardial effusion is present.", E[1] + 0.05 * i * E[5])
        a.measure(key, "lvef", 65.0)
    a.study("Q", "q", dt.date(2021, 1, 1)).clip("Q", "A2C", E[0]).clip("Q", "Subcostal", E[1])
    for v in range(4):
        key = f"V{v}"
        effusion = v < 2
        a.study(key, f"pv{v}").clip(key, "A2C", E[0]).clip(key, "Subcostal", E[1] if effusion else E[2])
        text = "A large pericardial effusion is present." if effusion else "No pericardial effusion."
        a.section(key, "Pericardium", text, E[6])
    a.build()
    return a


@pytest.fixture
def voter(fake: FakeArchive) -> NeighbourVoter:
    assert fake.store is not None
    return NeighbourVoter(CaseRetriever(fake.store, fake.folder, _weights(), index_kind="flat"), k=N)


def test_each_phenotype_votes_with_its_own_sections_neighbours(fake: FakeArchive, voter: NeighbourVoter) -> None:
    query = fake.study_ids["Q"]
    group_a = {fake.study_ids[f"a{i}"] for i in range(N)}
    group_b = {fake.study_ids[f"b{i}"] for i in range(N)}
    result = voter.predict(query)
    effusion = result.predictions["pericardial_effusion"]
    assert effusion.section == "Pericardium"
    assert {sid for sid, _ in effusion.neighbours} == group_b  # not the Left Ventricle neighbours (group A)
    assert effusion.probability == pytest.approx(1.0) and effusion.value == pytest.approx(3.0)
    assert effusion.grade_probabilities == pytest.approx((0.0, 0.0, 0.0, 1.0))
    lvef = result.predictions["lvef"]
    assert {sid for sid, _ in lvef.neighbours} == group_a and lvef.unit == "%"
    assert lvef.value is not None and 20.0 < lvef.value < 25.0
    assert result.predictions["lv_systolic_dysfunction"].probability == pytest.approx(1.0)
    # every phenotype: exactly the neighbours of its own section's search
    for name, prediction in result.predictions.items():
        section = PHENOTYPES[name].section
        assert prediction.section == section
        hits = voter.neighbours(query, section)
        searched = [(h.study_id, h.similarity) for h in hits]
        if PHENOTYPES[name].kind == "finding" and prediction.probability is not None:
            assert prediction.neighbours == searched, name
        else:
            assert set(prediction.neighbours) <= set(searched), name


def test_predictions_carry_neighbour_ids_and_similarities(fake: FakeArchive, voter: NeighbourVoter) -> None:
    lvef = voter.predict(fake.study_ids["Q"], names=["lvef"]).predictions["lvef"]
    assert len(lvef.neighbours) == N and lvef.n_searched == N
    sims = [s for _, s in lvef.neighbours]
    assert sims == sorted(sims, reverse=True) and all(0.9 < s <= 1.0 for s in sims)
    for sid, sim in lvef.neighbours:
        assert isinstance(sid, int) and isinstance(sim, float)
    data = voter.predict(fake.study_ids["Q"], names=["lvef"]).to_dict()
    assert data["predictions"]["lvef"]["neighbours"][0][0] == lvef.neighbours[0][0]


def test_missing_evidence_and_measurements_are_said(fake: FakeArchive, voter: NeighbourVoter) -> None:
    result = voter.predict(fake.study_ids["Q"], names=["pasp", "ivsd"]).predictions
    assert result["pasp"].value is None and result["ivsd"].value is None
    assert result["pasp"].note == "no Pulmonary Artery report section of another study passed the filters"
    assert result["ivsd"].note == "no neighbour has a stored ivsd" and result["ivsd"].n_searched == N
    with pytest.raises(RetrievalError, match=r"unknown phenotype\(s\) \['ef'\]"):
        voter.predict(fake.study_ids["Q"], names=["ef"])


def test_best_threshold_by_hand() -> None:
    t, j = best_threshold(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    assert t == pytest.approx(0.6) and j == pytest.approx(0.5)
    t, f1 = best_threshold(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]), "f1")
    assert f1 == pytest.approx(0.8) and t == pytest.approx(0.225)
    t, acc = best_threshold(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]), "accuracy")
    assert acc == pytest.approx(0.75) and t == pytest.approx(0.6)
    # votes that do not separate a rare finding: calling it never beats calling it absent, so it is never called
    t, acc = best_threshold(np.array([0.9, 0.1, 0.2, 0.3]), np.array([0, 0, 0, 1]), "accuracy")
    assert acc == pytest.approx(0.75) and t > 0.9
    with pytest.raises(RetrievalError, match="use one of youden, f1, accuracy"):
        best_threshold(np.array([0.3, 0.4]), np.array([1, 0]), "auc")
    with pytest.raises(RetrievalError, match="1 positive and 0 negative"):
        best_threshold(np.array([0.3]), np.array([1]))


def test_thresholds_are_fitted_on_validation_studies_stored_and_reloaded(
    fake: FakeArchive, voter: NeighbourVoter, tmp_path: Path
) -> None:
    validation = [fake.study_ids[f"V{v}"] for v in range(4)]
    fitted = fit_thresholds(voter, validation)
    assert fitted.support["pericardial_effusion"] == (2, 2)
    assert 0.0 < fitted.values["pericardial_effusion"] <= 1.0
    assert fitted.scores["pericardial_effusion"] == pytest.approx(1.0)
    assert "mitral_regurgitation" in fitted.skipped  # one class only
    assert fitted.weights.startswith("split@")
    weights_file = _weights().save(tmp_path / "split.yaml")
    path = fitted.save(thresholds_path(weights_file))
    assert path == tmp_path / "split.thresholds.json"
    loaded = Thresholds.load(path)
    assert loaded == fitted
    assert fitted.criterion == "accuracy" and fitted.moderate_criterion == "youden"
    assert 0.0 < fitted.moderate["pericardial_effusion"] <= 1.0  # V0, V1 state a large effusion (grade 3)
    judged = NeighbourVoter(voter.retriever, k=N, thresholds=loaded)
    large = judged.predict(validation[0]).predictions["pericardial_effusion"]
    assert large.positive is True and large.moderate is True and large.voted_grade() == 3
    none = judged.predict(validation[2]).predictions["pericardial_effusion"]
    assert none.positive is False and none.moderate is False and none.voted_grade() == 0
    without = fit_thresholds(voter, validation, criterion="youden", moderate_criterion=None)
    assert without.moderate == {} and without.moderate_criterion == ""
    with pytest.raises(RetrievalError, match="unknown threshold criterion 'auc'"):
        fit_thresholds(voter, validation, moderate_criterion="auc")
    with pytest.raises(RetrievalError, match="no thresholds file"):
        Thresholds.load(tmp_path / "absent.json")
    (tmp_path / "other.json").write_text('{"values": {}}')
    with pytest.raises(RetrievalError, match="not a vote-thresholds file"):
        Thresholds.load(tmp_path / "other.json")


def test_report_labels_read_the_studys_own_sections(fake: FakeArchive, voter: NeighbourVoter) -> None:
    labels = voter.report_labels(fake.study_ids["V0"])
    assert labels["pericardial_effusion"] == 3.0 and labels["mitral_regurgitation"] == 0.0
    assert voter.report_labels(fake.study_ids["a3"])["lvef"] == 23.0


def test_votes_are_similarity_weighted(fake: FakeArchive, voter: NeighbourVoter) -> None:
    lvef = voter.predict(fake.study_ids["Q"], names=["lvef"]).predictions["lvef"]
    by_study = {fake.study_ids[f"a{i}"]: 20.0 + i for i in range(N)}
    sims = np.array([s for _, s in lvef.neighbours])
    values = np.array([by_study[sid] for sid, _ in lvef.neighbours])
    assert lvef.value == pytest.approx(float(sims @ values / sims.sum()))
    sharp = NeighbourVoter(voter.retriever, k=N, temperature=1e-4).predict(fake.study_ids["Q"], names=["lvef"])
    assert sharp.predictions["lvef"].value == pytest.approx(20.0, abs=1e-3)  # the nearest neighbour's value
    with pytest.raises(RetrievalError, match="temperature"):
        NeighbourVoter(voter.retriever, temperature=0.0)


def _finding(probs: tuple[float, float, float, float], positive: bool | None, moderate: bool | None) -> Prediction:
    return Prediction(
        name="mitral_regurgitation",
        section="Mitral Valve",
        kind="finding",
        value=None,
        unit=None,
        probability=1.0 - probs[0],
        grade_probabilities=probs,
        positive=positive,
        threshold=0.3 if positive is not None else None,
        neighbours=[],
        n_searched=10,
        moderate=moderate,
    )


def test_the_voted_grade_follows_both_thresholds() -> None:
    probs = (0.55, 0.25, 0.15, 0.05)  # most neighbours normal; of the abnormal ones most are mild
    assert _finding(probs, None, None).voted_grade() == 0  # no thresholds: the most probable grade
    assert _finding(probs, False, False).voted_grade() == 0
    assert _finding(probs, True, False).voted_grade() == 1  # abnormal: the most probable abnormal grade
    # a share of moderate-or-worse neighbours above its own threshold calls the finding moderate or
    # worse even where the "abnormal" threshold (fitted for accuracy, so cautious) is not reached
    assert _finding(probs, False, True).voted_grade() == 2
    assert _finding((0.5, 0.0, 0.1, 0.4), True, True).voted_grade() == 3
    assert _finding(probs, True, None).voted_grade() == 1  # thresholds fitted without a moderate tier
