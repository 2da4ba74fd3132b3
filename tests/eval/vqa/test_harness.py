"""Loading, leakage, answering and resuming on a tiny suite in VQA-RAD's format; the real VQA-RAD when present."""

from __future__ import annotations

import json
import shutil
from collections.abc import Collection
from pathlib import Path

import pytest

from rag.eval.vqa.answerers import Answer, MajorityAnswerer, RetrievalAnswerer
from rag.eval.vqa.corpus import Corpus, image_hash
from rag.eval.vqa.harness import VQARun, evaluate_vqa
from rag.eval.vqa.items import VQAItem
from rag.eval.vqa.loaders import VQAError, load_suite
from rag.eval.vqa.runner import run_suite

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data" / "vqa_rad"


def test_bad_rows_are_named_and_left_out(vqa_rad_folder: Path) -> None:
    train = load_suite("vqa-rad", vqa_rad_folder, "train")
    test = load_suite("vqa-rad", vqa_rad_folder, "test")
    assert len(train.items) == 6 and len(test.items) == 2
    reasons = [s.line() for s in train.skipped + test.skipped]
    assert any("trainset.json row 6" in r and "'question'" in r for r in reasons)
    assert any("testset.json row 2" in r and "missing.jpg not found" in r for r in reasons)
    assert any("testset.json row 3" in r and "not CLOSED or OPEN" in r for r in reasons)
    assert test.items[0].answer_type == "closed" and test.items[0].categories["organ"] == "CHEST"


def test_unreadable_suites_are_errors(vqa_rad_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(VQAError, match="unknown suite 'slake2'"):
        load_suite("slake2", vqa_rad_folder, "test")
    with pytest.raises(VQAError, match=r"testset\.json not found"):
        load_suite("vqa-rad", tmp_path, "test")
    (tmp_path / "testset.json").write_text('{"qid": 1}')
    with pytest.raises(VQAError, match="JSON list of records"):
        load_suite("vqa-rad", tmp_path, "test")


def test_leakage_is_found_by_pixels_and_refused_unless_asked(vqa_rad_folder: Path) -> None:
    images = vqa_rad_folder / "images"
    shutil.copy(images / "img0.jpg", images / "renamed.jpg")  # same pixels, other name
    assert image_hash(images / "img0.jpg") == image_hash(images / "renamed.jpg")
    rows = json.loads((vqa_rad_folder / "testset.json").read_text())
    rows[0]["image_name"] = "renamed.jpg"
    (vqa_rad_folder / "testset.json").write_text(json.dumps(rows))
    with pytest.raises(VQAError, match="1 of 2 test items have their image"):
        evaluate_vqa(VQARun("vqa-rad", vqa_rad_folder), echo=lambda _: None)
    allowed = evaluate_vqa(VQARun("vqa-rad", vqa_rad_folder, leakage="allow"), echo=lambda _: None).runs[0]
    excluded = evaluate_vqa(VQARun("vqa-rad", vqa_rad_folder, leakage="exclude"), echo=lambda _: None).runs[0]
    leaked = next(it for it in allowed.items if it.id == "101")
    assert leaked.leaked and "1 items leak" in allowed.leakage
    # the leaked item's own image (train items 1 and 2) is used when allowed, hidden when excluded
    assert {i for i, _ in leaked.retrieved} <= {"1", "2"}
    hidden = next(it for it in excluded.items if it.id == "101")
    assert not {i for i, _ in hidden.retrieved} & {"1", "2"}


def test_retrieval_answers_by_the_nearest_question_and_image(vqa_rad_folder: Path) -> None:
    train = load_suite("vqa-rad", vqa_rad_folder, "train")
    corpus = Corpus(train.items)
    item = VQAItem("q", (vqa_rad_folder / "images" / "img1.jpg",), "Is there a pneumothorax?", "no", "closed")
    answer = RetrievalAnswerer(corpus, k=1).answer(item)
    assert answer.text == "no" and answer.retrieved[0][0] == "3"  # same question, same image
    assert MajorityAnswerer(train.items).answer(item).text == "no"  # 3 of the 4 closed answers
    choice = VQAItem("m", item.images, item.question, "A", "closed", options={"A": "No", "B": "Yes"})
    assert RetrievalAnswerer(corpus, k=3).answer(choice).text == "A"


class _Counting:
    """Wraps an answerer and counts the answers it is asked for; can crash after a number of them."""

    name = "counting"

    def __init__(self, inner: RetrievalAnswerer, crash_after: int | None = None) -> None:
        self.inner = inner
        self.calls: list[str] = []
        self.crash_after = crash_after

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    def answer(self, item: VQAItem, excluded: Collection[int] = ()) -> Answer:
        if self.crash_after is not None and len(self.calls) >= self.crash_after:
            raise KeyboardInterrupt("killed half-way")
        self.calls.append(item.id)
        return self.inner.answer(item, excluded)


def test_a_killed_run_resumes_without_answering_twice(vqa_rad_folder: Path, tmp_path: Path) -> None:
    train = load_suite("vqa-rad", vqa_rad_folder, "train")
    test = load_suite("vqa-rad", vqa_rad_folder, "test")
    inner = RetrievalAnswerer(Corpus(train.items), k=1)
    whole = run_suite(test, _Counting(inner))
    cache = tmp_path / "responses.jsonl"
    first = _Counting(inner, crash_after=1)
    with pytest.raises(KeyboardInterrupt):
        run_suite(test, first, cache=cache)
    with cache.open("a") as f:
        f.write('{"key": "cut sh')  # a line the crash left half-written
    second = _Counting(inner)
    resumed = run_suite(test, second, cache=cache)
    assert first.calls + second.calls == [it.id for it in test.items]  # every item answered once
    assert [(it.id, it.answer, it.correct) for it in resumed.items] == [
        (it.id, it.answer, it.correct) for it in whole.items
    ]
    again = _Counting(inner)
    rescored = run_suite(test, again, cache=cache, scoring="official")
    assert again.calls == [] and rescored.scoring == "official"  # re-scoring needs no new answer


def test_results_are_written(vqa_rad_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = evaluate_vqa(VQARun("vqa-rad", vqa_rad_folder, answerer="majority", out=out), echo=lambda _: None).runs[0]
    data = json.loads((out / "results.json").read_text())
    assert data["summary"]["n"] == 2 and data["summary"]["skipped_rows"] == 2
    assert (out / "results.csv").read_text().startswith("id,part,correct")
    assert "| closed |" in (out / "results.md").read_text() and result.skipped_rows == 2
    with pytest.raises(VQAError, match="unknown answerer 'gpt'"):
        evaluate_vqa(VQARun("vqa-rad", vqa_rad_folder, answerer="gpt"), echo=lambda _: None)


@pytest.mark.skipif(not SHARED.is_dir(), reason="VQA-RAD is not in ../shared/data/vqa_rad")
def test_vqa_rad_retrieval_beats_the_majority_answer() -> None:
    majority = evaluate_vqa(VQARun("vqa-rad", SHARED, answerer="majority"), echo=lambda _: None).runs[0]
    retrieval = evaluate_vqa(VQARun("vqa-rad", SHARED, leakage="allow"), echo=lambda _: None).runs[0]
    assert len(retrieval.items) == 451 and retrieval.skipped_rows == 0
    closed, baseline = retrieval.accuracy("closed"), majority.accuracy("closed")
    assert closed.n == 272 and closed.mean > baseline.mean + 0.15, (closed, baseline)


def test_the_command_says_what_is_wrong_in_one_line(vqa_rad_folder: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rag.cli import app

    runner = CliRunner()
    unknown = runner.invoke(app, ["eval", "vqa", "--suite", "vqa-radd", "--data", str(vqa_rad_folder)])
    assert unknown.exit_code != 0 and "unknown suite 'vqa-radd'; known:" in unknown.output
    missing = runner.invoke(app, ["eval", "vqa", "--suite", "vqa-rad", "--data", str(tmp_path / "nowhere")])
    assert missing.exit_code != 0 and "trainset.json not found" in missing.output
    out = tmp_path / "run"
    ran = runner.invoke(app, ["eval", "vqa", "--suite", "vqa-rad", "--data", str(vqa_rad_folder), "--out", str(out)])
    assert ran.exit_code == 0, ran.output  # the tiny suite's test images are not in its training split
    assert (out / "results.json").is_file()
    assert "Traceback" not in unknown.output + missing.output
