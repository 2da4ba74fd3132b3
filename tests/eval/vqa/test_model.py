"""A served model as the answerer: the two arms differ only in the retrieved context; failures are retried."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.eval.vqa.compare import mcnemar_p, paired_difference
from rag.eval.vqa.harness import VQARun, evaluate_vqa
from rag.eval.vqa.items import VQAItem
from rag.eval.vqa.model import OpenAIAnswerer
from rag.llm import ChatClient
from rag.llm.errors import LLMHTTPError
from tests.llm._fake_openai import Canned, FakeOpenAI, chat_answer


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()
    fake.answer("POST", "/v1/chat/completions", Canned(body=chat_answer("No.")))
    try:
        yield fake
    finally:
        fake.stop()


def test_rag_and_no_rag_arms_share_template_and_scorer(
    vqa_rad_folder: Path, server: FakeOpenAI, tmp_path: Path
) -> None:
    run = VQARun(
        "vqa-rad",
        vqa_rad_folder,
        answerer="openai",
        leakage="exclude",
        base_url=server.base_url,
        model="tiny",
        out=tmp_path / "run",
    )
    report = evaluate_vqa(run, echo=lambda _: None)
    plain, rag = report.runs
    assert plain.answerer == "tiny" and rag.answerer == "tiny+rag"
    for a, b in zip(plain.items, rag.items, strict=True):
        assert a.answer == b.answer == "No."
        assert a.retrieved == [] and b.retrieved  # what the rag arm was shown is recorded
        assert b.prompt is not None and a.prompt is not None
        assert b.prompt.endswith(a.prompt) and "for reference only" in b.prompt  # the only difference
    bodies = [s.body for s in server.seen]
    parts = bodies[0]["messages"][1]["content"]
    assert parts[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert bodies[0]["temperature"] == 0.0 and bodies[0]["max_tokens"] == 32
    assert report.comparison is not None and "tiny+rag minus tiny" in report.comparison
    assert (tmp_path / "run" / "comparison.md").is_file() and (tmp_path / "run" / "tiny+rag" / "results.json").is_file()
    assert len(server.seen) == 4  # 2 items x 2 arms
    plot = (tmp_path / "run" / "accuracy.svg").read_text()
    assert plot.startswith("<svg") and "tiny+rag: " in plot and plot.count("<rect") >= 6  # bars of both arms
    evaluate_vqa(run, echo=lambda _: None)
    assert len(server.seen) == 4  # a second run reads every answer from the cache


def test_transient_failures_are_retried_then_reported(server: FakeOpenAI, vqa_rad_folder: Path) -> None:
    server.answer("POST", "/v1/chat/completions", Canned(503, {"error": {"message": "overloaded"}}))
    answerer = OpenAIAnswerer(ChatClient(server.base_url, "tiny"), rag=False, images=False, retries=2, backoff=0.0)
    item = VQAItem("1", (vqa_rad_folder / "images" / "img0.jpg",), "Is there a pneumothorax?", "yes", "closed")
    with pytest.raises(LLMHTTPError, match="503"):
        answerer.answer(item)
    assert len(server.seen) == 3
    assert isinstance(server.seen[0].body["messages"][1]["content"], str)  # --no-images: the question only
    server.answer("POST", "/v1/chat/completions", Canned(400, {"error": {"message": "bad request"}}))
    with pytest.raises(LLMHTTPError, match="400"):
        answerer.answer(item)
    assert len(server.seen) == 4  # a client error is not retried


def test_mcnemar_and_the_paired_difference() -> None:
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(0, 6) == pytest.approx(2 / 64)
    assert mcnemar_p(3, 3) == 1.0
    from rag.eval.vqa.runner import ItemResult, RunResult

    def run(correct: list[int]) -> RunResult:
        items = [
            ItemResult(str(i), "q", "a", "a", "closed", bool(c), 0, 0, 0, {}, [], f"img{i // 2}", False)
            for i, c in enumerate(correct)
        ]
        return RunResult("s", "x", "corrected", items, 0, "")

    d = paired_difference(run([0, 0, 1, 1, 0, 0]), run([1, 1, 1, 1, 0, 1]))
    assert (d.n, d.only_first, d.only_second) == (6, 0, 3)
    assert d.difference == pytest.approx(0.5) and d.low <= d.difference <= d.high


def test_questions_in_flight_at_once_are_each_answered_and_cached_once(
    vqa_rad_folder: Path, server: FakeOpenAI, tmp_path: Path
) -> None:
    server.answer("POST", "/v1/chat/completions", Canned(body=chat_answer("no"), delay=0.2))
    run = VQARun(
        "vqa-rad",
        vqa_rad_folder,
        answerer="openai",
        arm="no-rag",
        base_url=server.base_url,
        model="tiny",
        images=False,
        workers=4,
        out=tmp_path / "run",
    )
    report = evaluate_vqa(run, echo=lambda _: None)
    assert [it.id for it in report.runs[0].items] == ["101", "102"]  # the suite's order, whatever finished first
    assert len(server.seen) == 2 and len((tmp_path / "run" / "responses.jsonl").read_text().splitlines()) == 2


def test_a_judge_model_grades_open_answers_beside_exact_match(vqa_rad_folder: Path, tmp_path: Path) -> None:
    fake = FakeOpenAI().start()
    fake.answer("POST", "/v1/chat/completions", Canned(body=chat_answer('{"equivalent": true}')))
    out = tmp_path / "run"
    run = VQARun("vqa-rad", vqa_rad_folder, answerer="majority", out=out, judge_url=fake.base_url, judge_model="j")
    try:
        (result,) = evaluate_vqa(run, echo=lambda _: None).runs
        asked = len(fake.seen)
        evaluate_vqa(run, echo=lambda _: None)  # verdicts come from judge.jsonl the second time
        again = len(fake.seen)
    finally:
        fake.stop()
    open_items = [it for it in result.items if it.part == "open"]
    assert open_items and all(it.judged is True for it in open_items if it.answer.strip())
    assert all(it.judged is None for it in result.items if it.part == "closed")  # closed answers are not judged
    assert asked == sum(1 for it in open_items if it.answer.strip()) and again == asked
    body = fake.seen[0].body
    assert body["response_format"]["type"] == "json_schema" and "Reference answer:" in body["messages"][1]["content"]
    summary = result.summary()
    assert summary["open_judged_accuracy"]["judge"] == "j" and summary["open_judged_accuracy"]["mean"] == 1.0
    assert "judged equivalent by j" in (out / "results.md").read_text()
