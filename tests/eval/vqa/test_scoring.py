"""VQA-RAD answers scored as MedEvalKit's script scores them, and as the corrected rule does."""

from __future__ import annotations

import pytest

from rag.eval.vqa.scoring import boxed_content, official_parse, score_vqa_rad


@pytest.mark.parametrize(
    ("gold", "response", "official", "corrected"),
    [
        ("yes", "Yes, it is.", True, True),
        ("yes", "\\boxed{Yes}", True, True),
        ("no", "<answer>No</answer>", True, True),
        ("no", "There is a nodule in the right lung.", True, False),  # "nodule" holds "no"
        ("no", "I cannot determine this from the image.", True, False),  # a refusal: "cannot" holds "no"
        ("yes", "Yes and no.", False, False),
        ("yes", "", False, False),
        ("no", "Answer: no", True, True),
        ("yes", "yesterday's film shows it", True, False),
    ],
)
def test_yes_no_answers(gold: str, response: str, official: bool, corrected: bool) -> None:
    assert score_vqa_rad(gold, response, "closed", "official").correct is official
    assert score_vqa_rad(gold, response, "closed", "corrected").correct is corrected


@pytest.mark.parametrize(
    ("gold", "response", "official", "corrected"),
    [
        ("left", "left", True, True),
        ("left", "Left.", False, True),  # the official match keeps punctuation
        ("left", "Answer: left", False, True),  # ... and the space the answer marker leaves
        ("left", "\\boxed{Left}", True, True),
        ("x-ray", "X ray", False, True),
        ("left", "", False, False),
        ("left", "I am unable to answer.", False, False),
    ],
)
def test_open_answers(gold: str, response: str, official: bool, corrected: bool) -> None:
    assert score_vqa_rad(gold, response, "open", "official").correct is official
    assert score_vqa_rad(gold, response, "open", "corrected").correct is corrected


def test_which_part_an_item_counts_in() -> None:
    # the official script calls an item closed when its reference is yes or no, whatever its type
    assert score_vqa_rad("left", "left", "closed", "official").part == "open"
    assert score_vqa_rad("left", "left", "closed", "corrected").part == "closed"
    assert score_vqa_rad("yes", "yes", "open", "official").part == "closed"


def test_token_overlap_and_the_official_names_swapped() -> None:
    corrected = score_vqa_rad("right lower lobe", "lower lobe", "open", "corrected")
    assert (corrected.precision, corrected.recall) == (1.0, pytest.approx(2 / 3))
    assert corrected.f1 == pytest.approx(0.8)
    official = score_vqa_rad("right lower lobe", "lower lobe", "open", "official")
    # calculate_f1 returns (f1, precision, recall) and the script unpacks (precision, recall, f1)
    assert (official.precision, official.recall, official.f1) == (pytest.approx(0.8), 1.0, pytest.approx(2 / 3))


def test_response_parsing() -> None:
    assert boxed_content("so \\boxed{a {b} c} and \\boxed{last}") == "last"
    assert boxed_content("\\boxed{a {b} c}") == "a {b} c"
    assert boxed_content("no box") is None
    assert official_parse("The final answer is: Left") == ": left"
    with pytest.raises(ValueError, match="unknown scoring"):
        score_vqa_rad("yes", "yes", "closed", "lenient")
