from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from rag.core.errors import RetrievalError, UnknownStudyError
from rag.retrieve.results import mmr_order
from rag.retrieve.retriever import CaseRetriever
from tests.conftest import EmbeddedArchive
from tests.retrieve._fake import FakeArchive, unit

D = 8
E = np.eye(D)
START = dt.date(2020, 1, 1)
N_CANDIDATES = 20


def _candidate_date(i: int) -> dt.date:
    return START + dt.timedelta(days=20 * i)


def _candidate_view(i: int) -> str:
    return "Subcostal" if i % 3 == 0 else "A2C"


@pytest.fixture
def fake(tmp_path: Path) -> FakeArchive:
    """A query study (one A4C clip along e0) and 20 candidates whose LV text drifts away from e0 as i grows.

    Candidate i: patient p{i // 2}, dated START + 20 i days, one clip of Subcostal (i % 3 == 0) or A2C.
    The query's patient has a second study whose LV text is exactly e0. Three candidates also carry a
    Left Atrium text: two near-duplicates and one in another direction (for MMR).
    """
    a = FakeArchive(tmp_path, dim=D)
    a.study("Q", "q", dt.date(2021, 6, 1)).clip("Q", "A4C", E[0]).section("Q", "Left Ventricle", "own", E[0])
    a.study("Q2", "q", dt.date(2021, 1, 1)).clip("Q2", "A4C", E[1]).section("Q2", "Left Ventricle", "prior", E[0])
    for i in range(N_CANDIDATES):
        key = f"c{i}"
        a.study(key, f"p{i // 2}", _candidate_date(i)).clip(key, _candidate_view(i), E[2])
        a.section(key, "Left Ventricle", f"LV text {i}", E[0] + (0.1 + 0.05 * i) * E[1 + i % 7])
    a.section("c1", "Left Atrium", "LA a", E[0] + 0.2 * E[1])
    a.section("c2", "Left Atrium", "LA a-prime", E[0] + 0.21 * E[1] + 0.01 * E[2])
    a.section("c4", "Left Atrium", "LA b", E[0] + 0.3 * E[2])
    a.study("S", "s", dt.date(2020, 5, 5)).clip("S", "SSN", E[3])
    a.build()
    return a


@pytest.fixture
def retriever(fake: FakeArchive) -> CaseRetriever:
    assert fake.store is not None
    return CaseRetriever(fake.store, fake.folder, index_kind="flat").warm_up()


def _expected(fake: FakeArchive, k: int, *, before: dt.date | None, views: set[str] | None) -> list[int]:
    """Brute force: LV sections of other patients passing the filters, by similarity to e0."""
    rows = []
    for i in range(N_CANDIDATES):
        if before is not None and not _candidate_date(i) < before:
            continue
        if views is not None and _candidate_view(i) not in views:
            continue
        key = f"c{i}"
        rows.append(
            (-float(unit(E[0] + (0.1 + 0.05 * i) * E[1 + i % 7]) @ E[0]), fake.section_ids[(key, "Left Ventricle")])
        )
    return [sid for _, sid in sorted(rows)[:k]]


def test_filters_are_applied_inside_the_search(fake: FakeArchive, retriever: CaseRetriever) -> None:
    query = fake.study_ids["Q"]
    before, views = dt.date(2020, 7, 1), {"Subcostal"}
    expected = _expected(fake, 10, before=before, views=views)
    assert len(expected) == 4  # candidates 0, 3, 6, 9
    best_overall = retriever.retrieve(query, k=4, exclude_same_patient=False).sections["Left Ventricle"]
    assert len({h.report_section_id for h in best_overall} & set(expected)) == 1  # fetch-then-drop would give 1
    result = retriever.retrieve(query, k=4, before_date=before, views=views, sections=["Left Ventricle"])
    hits = result.sections["Left Ventricle"]
    assert [h.report_section_id for h in hits] == expected
    assert result.candidates["Left Ventricle"] == 4
    assert [h.rank for h in hits] == [1, 2, 3, 4]
    for h in hits:
        assert h.study_date is not None and h.study_date < before
        assert h.patient_pseudonym != "P-q"
    # fewer candidates than k: all of them, no padding
    assert len(retriever.retrieve(query, k=9, before_date=before, views=views).sections["Left Ventricle"]) == 4


@pytest.mark.parametrize(
    ("before", "views", "k"),
    [(None, None, 7), (dt.date(2020, 9, 1), None, 5), (None, {"A2C"}, 6), (dt.date(2020, 12, 1), {"A2C"}, 3)],
)
def test_k_hits_whenever_k_candidates_match(
    fake: FakeArchive, retriever: CaseRetriever, before: dt.date | None, views: set[str] | None, k: int
) -> None:
    hits = retriever.retrieve(fake.study_ids["Q"], k=k, before_date=before, views=views).sections["Left Ventricle"]
    assert [h.report_section_id for h in hits] == _expected(fake, k, before=before, views=views)


def test_same_patient_only_when_asked(fake: FakeArchive, retriever: CaseRetriever) -> None:
    query = fake.study_ids["Q"]
    default = retriever.retrieve(query, k=3).sections["Left Ventricle"]
    assert fake.study_ids["Q2"] not in {h.study_id for h in default}
    allowed = retriever.retrieve(query, k=3, exclude_same_patient=False).sections["Left Ventricle"]
    assert allowed[0].study_id == fake.study_ids["Q2"] and allowed[0].similarity == pytest.approx(1.0)
    assert query not in {h.study_id for h in allowed}  # never the query's own report


def test_restricted_to_a_reference_set(fake: FakeArchive, retriever: CaseRetriever) -> None:
    allowed = {fake.study_ids["c7"], fake.study_ids["c12"], fake.study_ids["Q2"]}
    limited = retriever.restricted(allowed)
    result = limited.retrieve(fake.study_ids["Q"], k=5, sections=["Left Ventricle"])
    assert {h.study_id for h in result.sections["Left Ventricle"]} == allowed - {fake.study_ids["Q2"]}
    assert result.params.restricted_to == 3
    assert limited.with_weights(retriever.weights).candidate_studies is not None
    assert limited.restricted(None).candidate_studies is None


def test_hits_carry_provenance(fake: FakeArchive, retriever: CaseRetriever) -> None:
    result = retriever.retrieve(fake.study_ids["Q"], k=2)
    hit = result.sections["Left Ventricle"][0]
    assert (hit.text, hit.patient_pseudonym, hit.study_id) == ("LV text 0", "P-p0", fake.study_ids["c0"])
    assert hit.report_section_id == fake.section_ids[("c0", "Left Ventricle")]
    assert hit.similarity == pytest.approx(float(unit(E[0] + 0.1 * E[1]) @ E[0]), abs=1e-5)
    assert result.params.k == 2 and result.params.weights == "default"
    assert result.patient_pseudonym == "P-q"
    data = result.to_dict()
    assert data["sections"]["Left Ventricle"][0]["report_section_id"] == hit.report_section_id
    # Aortic Valve is not informed by A4C in the default table; IVC only by Subcostal
    assert {"Aortic Valve", "IVC"} <= set(result.no_evidence)
    assert "IVC" not in result.sections


def test_mmr_diversifies_and_lambda_one_is_plain_ranking(fake: FakeArchive, retriever: CaseRetriever) -> None:
    query = fake.study_ids["Q"]
    la = ["Left Atrium"]
    plain = [h.text for h in retriever.retrieve(query, k=3, sections=la).sections["Left Atrium"]]
    assert plain == ["LA a", "LA a-prime", "LA b"]
    same = retriever.retrieve(query, k=3, sections=la, mmr_lambda=1.0).sections["Left Atrium"]
    assert [h.text for h in same] == plain
    diverse = retriever.retrieve(query, k=3, sections=la, mmr_lambda=0.5).sections["Left Atrium"]
    assert [h.text for h in diverse] == ["LA a", "LA b", "LA a-prime"]
    assert [h.rank for h in diverse] == [1, 2, 3]
    assert diverse[1].similarity < diverse[2].similarity  # similarity stays the query similarity


def test_mmr_order_unit() -> None:
    vectors = np.stack([unit([1, 0, 0]), unit([1, 0.01, 0]), unit([0.6, 0.8, 0])])
    sims = np.array([0.9, 0.89, 0.5])
    assert list(mmr_order(sims, vectors, 3, 1.0)) == [0, 1, 2]
    assert list(mmr_order(sims, vectors, 3, 0.3)) == [0, 2, 1]
    assert list(mmr_order(sims, vectors, 1, 0.0)) == [0]
    assert len(mmr_order(sims[:0], vectors[:0], 3, 0.5)) == 0


def test_study_without_informing_views(fake: FakeArchive, retriever: CaseRetriever) -> None:
    result = retriever.retrieve(fake.study_ids["S"], k=2)
    assert "Aorta" in result.sections  # SSN informs Aorta
    assert "Left Ventricle" in result.no_evidence and "Left Ventricle" not in result.sections


def test_bad_requests_are_refused(fake: FakeArchive, retriever: CaseRetriever) -> None:
    query = fake.study_ids["Q"]
    with pytest.raises(UnknownStudyError, match="study 99999 is not in the case store"):
        retriever.retrieve(99999)
    with pytest.raises(RetrievalError, match=r"unknown view\(s\) \['PLAX'\]"):
        retriever.retrieve(query, views={"PLAX"})
    with pytest.raises(RetrievalError, match="k=0"):
        retriever.retrieve(query, k=0)
    with pytest.raises(RetrievalError, match="outside"):
        retriever.retrieve(query, mmr_lambda=1.5)
    with pytest.raises(RetrievalError, match="unknown section"):
        retriever.retrieve(query, sections=["Left ventricle"])
    with pytest.raises(RetrievalError, match="not an embeddings folder"):
        CaseRetriever(retriever.store, fake.root).warm_up()


def test_case_retriever_fills_the_retriever_role(embedded_archive: EmbeddedArchive) -> None:
    from rag.retrieve import Retriever
    from rag.store import open_store

    store = open_store(embedded_archive.config.db_url)
    try:
        assert isinstance(CaseRetriever(store, embedded_archive.embeddings), Retriever)
    finally:
        store.close()
