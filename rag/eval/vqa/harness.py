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

__all__ = ["ANSWERERS", "ARMS", "VQAReport", "VQARun", "evaluate_vqa"]

ANSWERERS = ("retrieval", "question-nn", "majority", "openai")
ARMS = ("no-rag", "rag", "both")


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
        workers: questions in flight at once (a served model batches them).
        judge_url / judge_model: an OpenAI-compatible judge of open answers (reported beside exact match).
        bertscore_model: a local model folder: report items also get BERTScore F1 (:mod:`rag.eval.bertscore`).
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
    arm: str = "both"
    base_url: str | None = None
    model: str | None = None
    images: bool = True
    context_k: int = 3
    max_tokens: int = 32
    workers: int = 1
    judge_url: str | None = None
    judge_model: str | None = None
    bertscore_model: Path | None = None


@dataclass
class VQAReport:
    """The runs (one per answerer arm) and, with two arms, their paired comparison."""

    runs: list[RunResult]
    comparison: str | None = None

    def markdown(self) -> str:
        parts = [r.markdown() for r in self.runs]
        if self.comparison:
            parts.append(self.comparison)
        return "\n".join(parts)


def evaluate_vqa(run: VQARun, *, echo: Callable[[str], None] = print) -> VQAReport:
    """Evaluate one answerer on a suite's test split (its training split is the retrieval corpus).

    Raises:
        VQAError: an unknown suite, answerer, scoring or leakage policy; unreadable suite files; a
            corpus that leaks under ``leakage="refuse"``.
    """
    for value, allowed, what in (
        (run.answerer, ANSWERERS, "answerer"),
        (run.scoring, SCORINGS, "scoring"),
        (run.leakage, LEAKAGE_POLICIES, "leakage policy"),
        (run.arm, ARMS, "arm"),
    ):
        if value not in allowed:
            raise VQAError(f"unknown {what} {value!r}; use one of {', '.join(allowed)}")
    needs_corpus = run.answerer != "openai" or run.arm != "no-rag"
    train = load_suite(run.suite, run.data, "train") if needs_corpus else None
    test = load_suite(run.suite, run.data, "test")
    for line in (train.lines() if train else []) + test.lines():
        echo(line)
    leak = None
    corpus = None
    if train is not None and run.answerer != "majority":
        corpus = Corpus(train.items)
        leak = corpus.leakage(test.items)
        echo(f"leakage: {leak.line(len(test.items))}")
        if leak.items and run.leakage == "refuse":
            raise VQAError(
                f"{leak.line(len(test.items))}: retrieval would see the answers' own images. "
                "Run with --leakage exclude (hide them from each test item) or --leakage allow (use them and report it)"
            )
    answerers: list[Answerer] = []
    if run.answerer == "majority":
        assert train is not None
        answerers.append(MajorityAnswerer(train.items))
    elif run.answerer == "openai":
        answerers += _model_arms(run, corpus)
    else:
        assert corpus is not None
        iw = 0.0 if run.answerer == "question-nn" else run.image_weight
        answerers.append(RetrievalAnswerer(corpus, k=run.k, image_weight=iw, name=run.answerer))
    bertscore = None
    if run.bertscore_model is not None:
        from rag.eval.bertscore import BERTScorer

        bertscore = BERTScorer(run.bertscore_model)  # fails now, before any answer, without its model
    cache = None
    if run.out is not None:
        run.out.mkdir(parents=True, exist_ok=True)
        cache = run.out / "responses.jsonl"
    results = []
    for answerer in answerers:
        result = run_suite(
            test,
            answerer,
            scoring=run.scoring,
            cache=cache,
            leakage=leak,
            exclude_leaked=run.leakage == "exclude",
            limit=run.limit,
            workers=run.workers,
        )
        if run.judge_url is not None:
            result.apply_judge(_judge(run))
        if bertscore is not None:
            result.apply_text_metric(bertscore.name, lambda ref, said: bertscore.score(ref, said)[2])
        result.notes.append(f"answerer: {answerer.fingerprint}")
        results.append(result)
        if run.out is not None:
            folder = run.out / answerer.name.replace("/", "_") if len(answerers) > 1 else run.out
            for path in result.write(folder):
                echo(f"wrote {path}")
    report = VQAReport(results)
    if run.out is not None:
        from rag.eval.plots import interval_bars

        groups: dict[str, list[tuple[str, float, float, float]]] = {}
        for name, part in (("closed", "closed"), ("open", "open"), ("all", None)):
            for r in results:
                acc = r.accuracy(part)
                groups.setdefault(name, []).append((r.answerer, acc.mean, acc.low, acc.high))
        plot = run.out / "accuracy.svg"
        plot.write_text(interval_bars(groups, f"{run.suite}: accuracy, 95 % CI ({run.scoring} scoring)"))
        echo(f"wrote {plot}")
    if len(results) == 2:
        from rag.eval.vqa.compare import comparison_table

        report.comparison = comparison_table(results[0], results[1])
        if run.out is not None:
            (run.out / "comparison.md").write_text(report.comparison, encoding="utf-8")
            echo(f"wrote {run.out / 'comparison.md'}")
    return report


def _judge(run: VQARun) -> object:
    from rag.core.config import load_config
    from rag.eval.vqa.judge import Judge
    from rag.llm import ChatClient

    llm = load_config().llm
    assert run.judge_url is not None
    client = ChatClient(run.judge_url, run.judge_model or llm.model, api_key=llm.api_key, timeout=llm.timeout_s)
    return Judge(client, cache=run.out / "judge.jsonl" if run.out is not None else None)


def _model_arms(run: VQARun, corpus: Corpus | None) -> list[Answerer]:
    """The served model's answerers: the no-rag arm, the rag arm, or both (that order)."""
    from rag.core.config import load_config
    from rag.eval.vqa.model import OpenAIAnswerer
    from rag.llm import ChatClient

    llm = load_config().llm
    client = ChatClient(
        run.base_url or llm.base_url, run.model or llm.model, api_key=llm.api_key, timeout=llm.timeout_s
    )
    retriever = RetrievalAnswerer(corpus, k=max(run.context_k, 1), image_weight=run.image_weight) if corpus else None
    arms = {"no-rag": [False], "rag": [True], "both": [False, True]}[run.arm]
    settings = {"k": run.context_k, "images": run.images, "max_tokens": run.max_tokens}
    return [OpenAIAnswerer(client, rag=rag, retriever=retriever, **settings) for rag in arms]  # type: ignore[arg-type]
