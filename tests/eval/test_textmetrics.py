"""Report-text metrics as TemMed-Bench computes them: BLEU-1 with smoothing 1, stemmed ROUGE-L, METEOR."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rag.eval.textmetrics import (
    DEBIAN_WORDNET,
    MetricUnavailable,
    bleu1,
    meteor,
    report_scores,
    rouge_l,
    tokenize,
    wordnet_dir,
)

needs_wordnet = pytest.mark.skipif(
    not (DEBIAN_WORDNET / "data.noun").is_file() and not os.environ.get("RAG_WORDNET"),
    reason="METEOR needs WordNet 3.0: apt-get install wordnet-base (.ci/run installs it)",
)


def test_tokens_split_words_punctuation_and_sentences() -> None:
    assert tokenize("small left effusion, unchanged. no pneumothorax.") == [
        "small", "left", "effusion", ",", "unchanged", ".", "no", "pneumothorax", ".",
    ]  # fmt: skip
    assert tokenize("can't see it") == ["ca", "n't", "see", "it"]  # the Treebank rule word_tokenize applies


def test_bleu1_counts_clipped_unigrams_and_smooths_a_miss() -> None:
    ref = tokenize("small left effusion, unchanged. no pneumothorax.")
    cand = tokenize("left pleural effusions are smaller. no pneumothorax.")
    # clipped matches: left, no, pneumothorax and both full stops = 5 of 9; no brevity penalty (9 vs 9)
    assert bleu1(ref, cand) == pytest.approx(5 / 9)
    # no bigram in common: smoothing method 1 keeps the zero-weight orders from zeroing the score
    assert bleu1(["a", "b"], ["b", "a"]) == pytest.approx(1.0)
    assert bleu1(["a", "b"], ["c", "d"]) == 0.0  # no unigram in common: NLTK returns 0 before smoothing
    # shorter candidate: brevity penalty exp(1 - 4/2) on a precision of 1
    assert bleu1(["a", "b", "c", "d"], ["a", "b"]) == pytest.approx(2.718281828**-1, rel=1e-6)


def test_rouge_l_stems_before_matching() -> None:
    assert rouge_l(["effusions", "increased"], ["effusion", "increase"]) == pytest.approx(1.0)
    # longest common subsequence 2 of 3 and 2 of 4: F = 2PR / (P + R)
    p, r = 2 / 3, 2 / 4
    assert rouge_l(["no", "new", "opacity", "seen"], ["no", "opacity", "here"]) == pytest.approx(2 * p * r / (p + r))


@needs_wordnet
def test_meteor_matches_synonyms_and_penalises_fragments() -> None:
    # identical: precision = recall = 1, one chunk of 3 matches -> penalty 0.5 * (1/3)^3
    assert meteor(["a", "b", "c"], ["a", "b", "c"]) == pytest.approx(1 - 0.5 * (1 / 3) ** 3)
    # WordNet synonyms count (ill ~ sick): 2 matches in one chunk; an unrelated word matches nothing
    assert meteor(["sick", "patient"], ["ill", "patient"]) == pytest.approx(1 - 0.5 * (1 / 2) ** 3)
    assert meteor(["sick", "patient"], ["tall", "patient"]) == pytest.approx(0.5 * (1 - 0.5))
    # NLTK's documented example (its docstring: 0.6944), through this WordNet copy
    hyp = "It is a guide to action which ensures that the military always obeys the commands of the party"
    ref = "It is a guide to action that ensures that the military will forever heed Party commands"
    assert round(meteor(ref.split(), hyp.split()), 4) == 0.6944
    assert (wordnet_dir() / "lexnames").is_file()


@needs_wordnet
def test_an_empty_answer_scores_zero_as_the_benchmark_scores_it() -> None:
    assert report_scores("Small left effusion.", "") == {"bleu1": 0.0, "rouge_l": 0.0, "meteor": 0.0}
    same = report_scores("Small left effusion.", "  small LEFT effusion. ")  # stripped and lower-cased
    assert same["bleu1"] == pytest.approx(1.0) and same["rouge_l"] == pytest.approx(1.0)


def test_a_wordnet_folder_that_is_not_one_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RAG_WORDNET", str(tmp_path))
    with pytest.raises(MetricUnavailable, match="not a WordNet folder"):
        wordnet_dir()


def test_bertscore_runs_on_a_local_model_and_says_what_it_needs_without_one(tmp_path: Path) -> None:
    from rag.encoders.towers.minilm import minilm_dir
    from rag.eval.bertscore import BERTScorer

    with pytest.raises(MetricUnavailable, match="--bertscore-model"):
        BERTScorer(tmp_path)
    scorer = BERTScorer(minilm_dir())
    same = scorer.score("Small left pleural effusion.", "Small left pleural effusion.")
    assert same[2] == pytest.approx(1.0, abs=1e-5)
    close = scorer.score("Small left pleural effusion.", "A small effusion on the left.")[2]
    far = scorer.score("Small left pleural effusion.", "The patient ate breakfast today.")[2]
    assert close > far
    assert scorer.name == f"bertscore:{minilm_dir().name}:layer=last"
