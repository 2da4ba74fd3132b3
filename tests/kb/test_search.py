from __future__ import annotations

from pathlib import Path

import pytest

from rag.kb import KBQueryError, KnowledgeBase, MiniLMEmbedder, UnknownChunkError, add_documents, reciprocal_rank_fusion


def test_rrf_scores_and_order_on_a_hand_made_example() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "a", "d"]], k=60)
    assert [item for item, _ in fused] == ["a", "c", "b", "d"]
    scores = dict(fused)
    assert scores["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert scores["b"] == pytest.approx(1 / 62) and scores["d"] == pytest.approx(1 / 63)
    # a large k rewards agreement (two second places beat one first place), k=0 only ties them (1/1 = 1/2 + 1/2);
    # ties go to the better best rank, then to the item seen first
    assert [i for i, _ in reciprocal_rank_fusion([["x", "y"], ["z", "y"]], k=60)] == ["y", "x", "z"]
    assert [i for i, _ in reciprocal_rank_fusion([["x", "y"], ["z", "y"]], k=0)] == ["x", "z", "y"]
    assert [i for i, _ in reciprocal_rank_fusion([["x", "y"], ["y", "x"]])] == ["x", "y"]  # tie: first seen
    assert reciprocal_rank_fusion([[], []]) == []
    with pytest.raises(ValueError, match="more than once"):
        reciprocal_rank_fusion([["a", "a"]])


def test_aortic_stenosis_query_finds_the_grading_table(starter_kb: KnowledgeBase) -> None:
    hits = starter_kb.search("severe aortic stenosis mean gradient", k=3)
    assert len(hits) == 3
    assert all(h.source == "starter/aortic-stenosis.md" for h in hits)
    grading = [h for h in hits if h.heading == "Aortic stenosis > Grading severity > Severity thresholds"]
    assert grading and "≥40 mmHg" in grading[0].text
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_ivc_query_finds_the_right_atrial_pressure_chunk(starter_kb: KnowledgeBase) -> None:
    hits = starter_kb.search("IVC collapse right atrial pressure", k=3)
    assert "Right atrial pressure from the IVC" in hits[0].heading
    table = [h for h in hits if "15 mmHg (range 10-20)" in h.text]
    assert table and table[0].dense_rank is not None and table[0].bm25_rank is not None


def test_a_rare_keyword_is_found_through_bm25(starter_kb: KnowledgeBase) -> None:
    hits = starter_kb.search("TAPSE", k=3)
    by_bm25 = [h for h in hits if h.bm25_rank == 1]
    assert by_bm25 and "TAPSE" in by_bm25[0].text
    assert by_bm25[0].heading == "Right heart and pressures > Right ventricle > RV systolic function"
    # the dense side alone does not put it first: the keyword side is what finds it
    assert by_bm25[0].dense_rank != 1
    rows, _ = starter_kb.bm25_ranking("TAPSE", 50)
    assert all("tapse" in starter_kb.chunks()[int(r)].indexed_text.lower() for r in rows)


def test_hits_carry_both_ranks_and_scores(starter_kb: KnowledgeBase) -> None:
    hits = starter_kb.search("left atrial volume index severely dilated", k=5)
    assert "Left atrial volume index" in hits[0].heading and ">48 mL/m²" in hits[0].text
    for h in hits:
        assert h.dense_rank is not None and h.dense_score is not None and -1.0 <= h.dense_score <= 1.0
        assert (h.bm25_rank is None) == (h.bm25_score is None)
        expected = 1 / (60 + h.dense_rank) + (1 / (60 + h.bm25_rank) if h.bm25_rank else 0.0)
        assert h.score == pytest.approx(expected)
        assert starter_kb.get(h.chunk_id).text == h.text


def test_no_keyword_match_falls_back_to_dense(starter_kb: KnowledgeBase) -> None:
    hits = starter_kb.search("zzzqqq", k=2)
    assert len(hits) == 2 and all(h.bm25_rank is None and h.dense_rank is not None for h in hits)


def test_bad_queries_are_refused(starter_kb: KnowledgeBase) -> None:
    for bad in ("", "   ", None, 3):
        with pytest.raises(KBQueryError, match="non-empty string"):
            starter_kb.search(bad, k=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k must be a positive integer"):
        starter_kb.search("LVEF", k=0)


def test_listing_and_lookup(starter_kb: KnowledgeBase) -> None:
    chunks = starter_kb.chunks()
    assert len(chunks) == len(starter_kb) == starter_kb.manifest.count
    assert chunks[0].chunk_id in starter_kb and "nope" not in starter_kb
    assert starter_kb.get(chunks[5].chunk_id) == chunks[5]
    with pytest.raises(UnknownChunkError, match=r"Did you mean 'starter/atria.md#2'"):
        starter_kb.get("starter/atria.md#20")


def test_an_empty_knowledge_base_returns_nothing(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    result = add_documents([], tmp_path / "kb", embedder=embedder)
    assert result.total_chunks == 0
    kb = KnowledgeBase.open(tmp_path / "kb", embedder=embedder)
    assert len(kb) == 0 and kb.search("LVEF", k=5) == []
