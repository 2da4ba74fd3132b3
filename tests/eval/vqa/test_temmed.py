"""TemMed-Bench's report and image-pair tasks: loaders, the notebooks' readings, the scores."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.eval.textmetrics import DEBIAN_WORDNET
from rag.eval.vqa.harness import VQARun, evaluate_vqa
from rag.eval.vqa.loaders import load_suite
from rag.eval.vqa.runner import _weighted
from rag.eval.vqa.scoring import temmed_pair_reading
from tests.eval.vqa.test_suites import _jpeg
from tests.llm._fake_openai import Canned, FakeOpenAI, chat_answer

REPORTS = [
    "Left pleural effusion has decreased. No pneumothorax.",
    "New right lower lobe opacity.",
    "No change.",
]


@pytest.fixture
def temmed(tmp_path: Path) -> Path:
    png = tmp_path / "CheXpertPlus" / "PNG"
    records = []
    for i, report in enumerate(REPORTS):
        (png / f"p{i}").mkdir(parents=True)
        (png / f"p{i}" / "now.png").write_bytes(_jpeg(2 * i))
        (png / f"p{i}" / "then.png").write_bytes(_jpeg(2 * i + 1))
        records.append(
            {
                "patient_id": f"p{i}",
                "image_path": f"p{i}/now.jpg",
                "historical_image_path": f"p{i}/then.jpg",
                "condition_changes_report": report,
                "VQA_Final": [],
            }
        )
    missing = {"image_path": "p9/now.jpg", "historical_image_path": "p9/then.jpg", "condition_changes_report": "x"}
    records.append(missing)
    records.append({"image_path": "p0/now.jpg", "historical_image_path": "p0/then.jpg"})
    (tmp_path / "TestSet_VQA_ReportGeneration_Final.json").write_text(json.dumps(records))
    pairs = [
        {"option": {"A": 0, "B": 1, "C": 2}, "right_option": "B", "condition_change": "a new opacity"},
        {"option": {"A": 2, "B": 0, "C": 1}, "right_option": "A", "condition_change": "no change"},
        {"option": {"A": 2, "B": 0, "C": 7}, "right_option": "A", "condition_change": "no change"},
        {"option": {"A": 2, "B": 0}, "right_option": "A", "condition_change": "no change"},
        {"option": {"A": 2, "B": 0, "C": 1}, "right_option": "D", "condition_change": "no change"},
    ]
    (tmp_path / "TestSet_ImagePairSelection.json").write_text(json.dumps(pairs))
    return tmp_path


def test_report_items_are_pairs_with_their_change_report_and_bad_rows_named(temmed: Path) -> None:
    report = load_suite("temmed-report", temmed, "test")
    assert [it.answer for it in report.items] == REPORTS
    first = report.items[0]
    assert [p.name for p in first.images] == ["then.png", "now.png"] and first.long_answer
    assert first.image_labels == ("Last visit image:", "Current visit image:")
    reasons = [s.line() for s in report.skipped]
    assert len(reasons) == 2 and "row 3: image" in reasons[0] and "'condition_changes_report'" in reasons[1]


def test_pair_items_show_three_pairs_in_option_order(temmed: Path) -> None:
    report = load_suite("temmed-pairs", temmed, "test")
    assert [it.answer for it in report.items] == ["B", "A"]
    item = report.items[0]
    assert [p.parent.name for p in item.images] == ["p0", "p0", "p1", "p1", "p2", "p2"]
    assert [p.name for p in item.images[:2]] == ["then.png", "now.png"]
    assert item.image_labels[2] == "B: Last visit image:" and "'a new opacity'" in item.question
    reasons = " | ".join(s.line() for s in report.skipped)
    assert "record 7" in reasons and "{A, B, C" in reasons and "'D'" in reasons


@pytest.mark.parametrize(
    ("answer", "official", "corrected"),
    [
        ("Pair B shows it. My answer is B", "B", "B"),
        ("My answer is **C.**", "C", "C"),
        ("my answer is [b]", None, "B"),  # brackets: the notebook stops; read here
        ("My answer is about the opacity: my answer is B", "A", "B"),  # "is a" as a substring
        ("I think it is C.", None, "C"),  # no marker: a lone letter, as VLMEvalKit infers it
        ("Unsure.", None, None),
    ],
)
def test_pair_answers_read_as_notebook_and_corrected(answer: str, official: str | None, corrected: str | None) -> None:
    assert temmed_pair_reading(answer, "official") == official
    assert temmed_pair_reading(answer, "corrected") == corrected


def test_weighted_scores_follow_scikit_learn() -> None:
    # truth A A B C, said A B B None: A p=1 r=.5; B p=.5 r=1; C p=0 r=0; weights .5 .25 .25
    f1, p, r = _weighted([("A", "A"), ("A", "B"), ("B", "B"), ("C", None)])
    assert p == pytest.approx(0.5 * 1 + 0.25 * 0.5)
    assert r == pytest.approx(0.5 * 0.5 + 0.25 * 1)
    assert f1 == pytest.approx(0.5 * (2 / 3) + 0.25 * (2 / 3))


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()
    fake.answer("POST", "/v1/chat/completions", Canned(body=chat_answer("Left pleural effusion has decreased.")))
    try:
        yield fake
    finally:
        fake.stop()


@pytest.mark.skipif(not (DEBIAN_WORDNET / "data.noun").is_file(), reason="METEOR needs wordnet-base")
def test_a_served_model_writes_reports_scored_with_bleu_rouge_and_meteor(
    temmed: Path, server: FakeOpenAI, tmp_path: Path
) -> None:
    from rag.encoders.towers.minilm import minilm_dir

    out = tmp_path / "run"
    run = VQARun(
        "temmed-report",
        temmed,
        answerer="openai",
        arm="no-rag",
        base_url=server.base_url,
        model="m",
        out=out,
        bertscore_model=minilm_dir(),
    )
    (result,) = evaluate_vqa(run, echo=lambda _: None).runs
    body = server.seen[0].body
    parts = body["messages"][1]["content"]
    assert [p.get("text") for p in parts[:3:2]] == ["Last visit image:", "Current visit image:"]
    assert parts[1]["type"] == "image_url" and body["max_tokens"] == 256
    s = result.summary()
    first = result.items[0].text  # the reference itself, cut after its first sentence
    # rouge-score keeps words only: 5 of the reference's 7, in order, and nothing else
    assert first["rouge_l"] == pytest.approx(2 * 1 * (5 / 7) / (1 + 5 / 7))
    assert s["report_bleu1"]["mean"] == pytest.approx(100 * sum(it.text["bleu1"] for it in result.items) / 3)
    table = (out / "results.md").read_text()  # one arm: written in the run folder itself
    assert "| BLEU-1 |" in table and "| METEOR |" in table and "| closed |" not in table
    assert f"| bertscore:{minilm_dir().name}:layer=last |" in table  # the optional model-based metric, named
