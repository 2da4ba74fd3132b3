"""One call from a suite folder to scored results: load, build the corpus, check leakage, answer, score."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rag.eval.vqa.answerers import Answerer, MajorityAnswerer, RetrievalAnswerer
from rag.eval.vqa.corpus import LEAKAGE_POLICIES, Corpus
from rag.eval.vqa.loaders import VQAError, load_suite
from rag.eval.vqa.runner import RunResult, run_suite
from rag.eval.vqa.scoring import SCORINGS

__all__ = ["ANSWERERS", "VQARun", "evaluate_vqa"]

ANSWERERS = ("retrieval", "question-nn", "majority")


@dataclass(frozen=True)
class VQARun:
    """What to evaluate and how.

    Attributes:
        k / image_weight: the retrieval answerer's neighbours and the weight of image similarity
            beside question similarity (defaults chosen by leave-one-out on VQA-RAD's training split:
            k=1, image weight 1.0).
        leakage: ``refuse`` (stop when a test item's image or patient is in the corpus), ``exclude``
            (hide those corpus items from that test item) or ``allow`` (use them, and say so).
        limit: answer at most this many new items (a later run resumes from the cache).
    """

    suite: str
    data: Path
    answerer: str = "retrieval"
    scoring: str = "corrected"
    leakage: str = "refuse"
    k: int = 1
    image_weight: float = 1.0
    out: Path | None = None
    limit: int | None = None


def evaluate_vqa(run: VQARun, *, echo: Callable[[str], None] = print) -> RunResult:
    """Evaluate one answerer on a suite's test split (its training split is the retrieval corpus).

    Raises:
        VQAError: an unknown suite, answerer, scoring or leakage policy; unreadable suite files; a
            corpus that leaks under ``leakage="refuse"``.
    """
    for value, allowed, what in (
        (run.answerer, ANSWERERS, "answerer"),
        (run.scoring, SCORINGS, "scoring"),
        (run.leakage, LEAKAGE_POLICIES, "leakage policy"),
    ):
        if value not in allowed:
            raise VQAError(f"unknown {what} {value!r}; use one of {', '.join(allowed)}")
    train = load_suite(run.suite, run.data, "train")
    test = load_suite(run.suite, run.data, "test")
    for line in train.lines() + test.lines():
        echo(line)
    answerer: Answerer
    leak = None
    if run.answerer == "majority":
        answerer = MajorityAnswerer(train.items)
    else:
        corpus = Corpus(train.items)
        leak = corpus.leakage(test.items)
        echo(f"leakage: {leak.line(len(test.items))}")
        if leak.items and run.leakage == "refuse":
            raise VQAError(
                f"{leak.line(len(test.items))}: retrieval would see the answers' own images. "
                "Run with --leakage exclude (hide them from each test item) or --leakage allow (use them and report it)"
            )
        iw = 0.0 if run.answerer == "question-nn" else run.image_weight
        answerer = RetrievalAnswerer(corpus, k=run.k, image_weight=iw, name=run.answerer)
    cache = None
    if run.out is not None:
        run.out.mkdir(parents=True, exist_ok=True)
        cache = run.out / "responses.jsonl"
    result = run_suite(
        test,
        answerer,
        scoring=run.scoring,
        cache=cache,
        leakage=leak,
        exclude_leaked=run.leakage == "exclude",
        limit=run.limit,
    )
    result.notes.append(f"answerer: {answerer.fingerprint}")
    if run.out is not None:
        for path in result.write(run.out):
            echo(f"wrote {path}")
    return result
