"""SLAKE, MedBookVQA and GMAI-MMBench in their documented formats: loaders and the rules that score them."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest

from rag.eval.vqa.loaders import VQAError, load_suite
from rag.eval.vqa.scoring import can_infer, score_item, slake_normalise


def _jpeg(seed: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(seed).random((32, 32)) * 255).astype(np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("response", "letter"),
    [
        ("B", "B"),
        ("The answer is (C).", "C"),
        ("\\boxed{D}", "D"),
        ("Pneumothorax", "B"),  # no letter: the one option whose text is in the answer
        ("A large mass is seen on the left", None),  # "A" as an article in a long answer
        ("A", "A"),
        ("B or C", None),  # two letters: nothing inferred
        ("Cannot determine the answer", "Z"),  # a refusal
        ("", None),
    ],
)
def test_option_inference_as_vlmevalkit_does(response: str, letter: str | None) -> None:
    options = {"A": "Pneumonia", "B": "Pneumothorax", "C": "Effusion", "D": "Normal"}
    assert can_infer(response, options) == letter


def test_slake_normalisation() -> None:
    assert slake_normalise("X-Ray") == slake_normalise("xray") == "xray"
    assert slake_normalise("Left lung (the patient's left).") == "left lung"
    assert slake_normalise("Yes.") == "yes" and slake_normalise("Yep") == "yes" and slake_normalise("FALSE") == "no"
    assert slake_normalise("Correct") == "correct"  # not one of lmms-eval's synonyms
    assert slake_normalise("no effusion") == "no effusion"  # a synonym counts only as the whole answer
    assert slake_normalise("Chest X-ray") == "chest x ray"  # "x ray" is read as "xray" only as the whole answer
    assert slake_normalise("肝脏（右侧）。") == "肝脏" and slake_normalise("是的") == "yes"  # full-width brackets too


def test_slake_loader_keeps_english_and_names_bad_rows(tmp_path: Path) -> None:
    (tmp_path / "imgs" / "xmlab1").mkdir(parents=True)
    (tmp_path / "imgs" / "xmlab1" / "source.jpg").write_bytes(_jpeg(1))
    good = {
        "img_id": 1,
        "img_name": "xmlab1/source.jpg",
        "question": "Which organ is abnormal?",
        "answer": "Lung",
        "q_lang": "en",
        "modality": "X-Ray",
        "answer_type": "OPEN",
        "content_type": "Abnormality",
        "qid": 7,
    }
    rows = [good, {**good, "q_lang": "zh", "qid": 8}, {**good, "img_name": "xmlab9/source.jpg", "qid": 9}]
    (tmp_path / "test.json").write_text(json.dumps(rows))
    report = load_suite("slake", tmp_path, "test")
    assert [it.id for it in report.items] == ["7"] and report.items[0].patient == "1"
    assert len(report.skipped) == 1 and "row 2" in report.skipped[0].line()
    item = report.items[0]
    assert score_item("slake", item, "lung.").correct and not score_item("slake", item, "liver").correct
    said = "The answer is: lung."
    assert score_item("slake", item, said).correct and not score_item("slake", item, said, "official").correct
    assert item.categories == {"modality": "X-Ray", "content_type": "Abnormality"}


def test_medbookvqa_options_put_the_answer_at_its_letter(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.jpg").write_bytes(_jpeg(2))
    row = {
        "_id": "m1",
        "QAtype": "diagnosis",
        "Question": "What is shown?",
        "Answer": "Osteosarcoma",
        "Distractors": ["Ewing sarcoma", "Osteoid osteoma", "Chondroma"],
        "correct_choice": "C",
        "image_path": "img/a.jpg",
        "LABEL": {"Modality": "X-ray", "Anatomy": "Bone", "Department": "Orthopedics"},
    }
    bad = {**row, "_id": "m2", "Distractors": ["only one"]}
    (tmp_path / "data.json").write_text(json.dumps([row, bad]))
    report = load_suite("medbookvqa", tmp_path, "test")
    item = report.items[0]
    assert item.options == {"A": "Ewing sarcoma", "B": "Osteoid osteoma", "C": "Osteosarcoma", "D": "Chondroma"}
    assert item.answer == "C" and item.categories["department"] == "Orthopedics"
    assert "Distractors" in report.skipped[0].reason
    assert score_item("medbookvqa", item, "C. Osteosarcoma").correct
    assert score_item("medbookvqa", item, "osteosarcoma").correct  # the option's text, no letter
    assert not score_item("medbookvqa", item, "B").correct
    with pytest.raises(VQAError, match="test split only"):
        load_suite("medbookvqa", tmp_path, "train")


def test_gmai_mmbench_tsv_with_base64_images(tmp_path: Path) -> None:
    image = base64.b64encode(_jpeg(3)).decode()
    header = "index\timage\tquestion\tA\tB\tC\tD\tE\tanswer\tdepartment\tclinical VQA task"
    lines = [
        header,
        f"11\t{image}\tWhich modality?\tCT\tMRI\tX-ray\t\t\tB\tRadiology\tModality recognition",
        "12\tnot base64!\tWhich organ?\tLiver\tKidney\t\t\t\tA\tRadiology\tOrgan recognition",
        f"13\t{image}\tWhich side?\tLeft\tRight\t\t\t\tC\tRadiology\tOrientation",
    ]
    (tmp_path / "GMAI-MMBench_TEST.tsv").write_text("\n".join(lines) + "\n")
    report = load_suite("gmai-mmbench", tmp_path, "test")
    assert [it.id for it in report.items] == ["11"]
    item = report.items[0]
    assert item.options == {"A": "CT", "B": "MRI", "C": "X-ray"} and item.images[0].read_bytes()[:2] == b"\xff\xd8"
    assert item.categories == {"department": "Radiology", "clinical VQA task": "Modality recognition"}
    reasons = [s.line() for s in report.skipped]
    assert any("row 2" in r and "base64" in r for r in reasons) and any("row 3" in r and "'C'" in r for r in reasons)
    assert score_item("gmai-mmbench", item, "The answer is B").correct


def test_smmile_problems_become_a_query_with_its_examples(tmp_path: Path) -> None:
    for i in range(4):
        (tmp_path / f"{i}.jpg").write_bytes(_jpeg(10 + i))
    rows = [
        {"problem_id": "p1", "order": 2, "question": "Diagnosis?", "answer": "Pneumonia.", "image": "2.jpg"},
        {"problem_id": "p1", "order": 0, "question": "Diagnosis?", "answer": "Normal", "image": "0.jpg"},
        {"problem_id": "p1", "order": 1, "question": "Diagnosis?", "answer": "Pneumonia.", "image": "1.jpg"},
        {"problem_id": "p2", "order": "x", "question": "Diagnosis?", "answer": "Normal", "image": "3.jpg"},
        {"problem_id": "p2", "order": 1, "question": "Diagnosis?", "answer": "Normal", "image": "3.jpg"},
    ]
    (tmp_path / "data.json").write_text(json.dumps(rows))
    report = load_suite("smmile", tmp_path, "test")
    open_item, choice = report.items  # p2 is left out whole: one of its rows is bad
    assert open_item.id == "p1" and open_item.images[0].name == "2.jpg"
    assert [ex.images[0].name for ex in open_item.examples] == ["0.jpg", "1.jpg"]  # sorted by order
    assert choice.options == {"A": "Normal", "B": "Pneumonia."} and choice.answer == "B"  # in the examples order
    assert "row 3" in report.skipped[0].line() and "'order'" in report.skipped[0].reason
    assert score_item("smmile", open_item, "pneumonia").correct  # punctuation and case do not count
    assert not score_item("smmile", open_item, "viral pneumonia").correct
    assert score_item("smmile", choice, "B").correct


def test_pathvqa_pickles_are_read_as_plain_data_only(tmp_path: Path) -> None:
    import pickle

    (tmp_path / "qas" / "test").mkdir(parents=True)
    (tmp_path / "images" / "test").mkdir(parents=True)
    (tmp_path / "images" / "test" / "test_0001.jpg").write_bytes(_jpeg(20))
    rows = [
        {"image": "test_0001", "question": "Is this a granuloma?", "answer": "yes"},
        {"image": "test_0001", "question": "What is present?", "answer": "Fibrosis"},
        {"image": "test_0404", "question": "Is this normal?", "answer": "no"},
    ]
    (tmp_path / "qas" / "test" / "test_qa.pkl").write_bytes(pickle.dumps(rows))
    report = load_suite("pathvqa", tmp_path, "test")
    assert [it.answer_type for it in report.items] == ["closed", "open"]
    assert "test_0404.jpg not found" in report.skipped[0].reason
    assert score_item("pathvqa", report.items[1], "fibrosis.").correct  # corrected: normalised match
    assert not score_item("pathvqa", report.items[1], "fibrosis.", "official").correct

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("this must never run",))

    (tmp_path / "qas" / "test" / "test_qa.pkl").write_bytes(pickle.dumps([Payload()]))
    with pytest.raises(VQAError, match="not plain data"):
        load_suite("pathvqa", tmp_path, "test")


def test_temmed_change_questions_with_prior_and_current_images(tmp_path: Path) -> None:
    from rag.eval.vqa.runner import run_suite
    from rag.eval.vqa.scoring import temmed_reading

    png = tmp_path / "CheXpertPlus" / "PNG" / "p1"
    png.mkdir(parents=True)
    (png / "s1.png").write_bytes(_jpeg(30))
    (png / "s0.png").write_bytes(_jpeg(31))
    record = {
        "image_path": "p1/s1.jpg",
        "historical_image_path": "p1/s0.jpg",
        "VQA_Final": [
            {"VQA_question": "Has the effusion improved?", "VQA_answer": "Yes."},
            {"VQA_question": "Is there a new opacity?", "VQA_answer": "No"},
            {"VQA_question": "Is it worse?", "VQA_answer": "Maybe"},
        ],
    }
    (tmp_path / "TestSet_VQA_ReportGeneration_Final.json").write_text(json.dumps([record]))
    picks = [
        {"img_id": 0, "question_id": 0},
        {"img_id": 0, "question_id": 1},
        {"img_id": 0, "question_id": 2},
        {"img_id": 5, "question_id": 0},
        {"img_id": 0},
    ]
    (tmp_path / "TestSet_SelectedVQA_2000.json").write_text(json.dumps(picks))
    report = load_suite("temmed", tmp_path, "test")
    assert [it.answer for it in report.items] == ["yes", "no"]
    assert [p.name for p in report.items[0].images] == ["s0.png", "s1.png"]  # prior first, then current
    reasons = " | ".join(s.line() for s in report.skipped)
    assert "'maybe'" in reasons and "img_id 5" in reasons and "'question_id'" in reasons
    assert temmed_reading("Nothing has changed.", "official") == "no"  # the notebook reads a prefix
    assert temmed_reading("Nothing has changed.", "corrected") is None
    assert temmed_reading("Yes, it has improved.", "corrected") == "yes"

    class Fixed:
        name = "fixed"
        fingerprint = "fixed"

        def answer(self, item: object, excluded: object = ()) -> object:
            from rag.eval.vqa.answerers import Answer

            return Answer("Yes")

    summary = run_suite(report, Fixed()).summary()  # type: ignore[arg-type]
    # always "yes": right on the yes item only; macro F1 = (F1 yes 2/3 + F1 no 0) / 2
    assert summary["all_accuracy"]["mean"] == 0.5 and summary["macro_f1"] == pytest.approx(1 / 3)
