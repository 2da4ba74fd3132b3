"""TemMed-Bench's three tasks: change VQA, change-report generation and image-pair selection.

Files (Levi-ZJY/TemMed-Bench, 2025): ``TestSet_VQA_ReportGeneration_Final.json`` (records with
``image_path``, ``historical_image_path``, ``condition_changes_report`` and ``VQA_Final: [{VQA_question,
VQA_answer}]``), ``TestSet_SelectedVQA_2000.json`` (the scored ``{img_id, question_id}`` pairs),
``TestSet_ImagePairSelection.json`` (``{option: {A, B, C: record index}, right_option, condition_change}``)
and the images under ``CheXpertPlus/PNG/`` (``.jpg`` names read as ``.png``, as the benchmark's scripts
do). Every pair is shown prior first, then current, each image captioned as the benchmark captions it.
Test sets only: the benchmark's retrieval corpus is not part of these files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.eval.vqa.items import LoadReport, VQAItem
from rag.eval.vqa.loaders import VQAError, collect, json_rows, text_field

__all__ = ["REPORT_INSTRUCTION", "TEMMED_SUITES", "load_temmed", "load_temmed_pairs", "load_temmed_report"]

RECORDS = "TestSet_VQA_ReportGeneration_Final.json"
PAIR_LABELS = ("Last visit image:", "Current visit image:")
REPORT_INSTRUCTION = (
    "You are a radiologist. The two chest X-rays are of one patient: the first from the last visit, the "
    "second from the current visit. Write the Impression section of the current visit's report, saying how "
    "the patient's condition changed since the last visit. Reply with the report text only."
)
PAIR_INSTRUCTION = (
    "You are a radiologist. Above are three pairs of chest X-rays (A, B, C); in each pair the first image "
    "is from a patient's last visit and the second from the current visit. Which pair's change from the "
    "last to the current visit matches this statement: '{change}'? End your reply with 'My answer is X', "
    "X being the pair's letter."
)


def _test_only(split: str) -> None:
    if split != "test":
        raise VQAError(f"TemMed-Bench has a test split only, not {split!r}: use an answerer without a corpus")


def _pair_images(folder: Path, record: Any, where: str) -> tuple[Path, Path]:
    """The prior then the current image of one record (ValueError naming what is missing)."""
    if not isinstance(record, dict):
        raise ValueError(f"{where} is a {type(record).__name__}, not a record")
    out = []
    for key in ("historical_image_path", "image_path"):
        image = folder / "CheXpertPlus" / "PNG" / text_field(record, key).replace("jpg", "png")
        if not image.is_file():
            raise ValueError(f"image {image} not found")
        out.append(image)
    return out[0], out[1]


def _patient(record: dict[str, Any]) -> str | None:
    return str(record["patient_id"]) if record.get("patient_id") is not None else None


def load_temmed(folder: Path, split: str) -> LoadReport:
    """Change VQA: the 2,000 selected yes/no questions about a prior/current pair."""
    _test_only(split)
    records = json_rows(folder / RECORDS)
    selected = folder / "TestSet_SelectedVQA_2000.json"

    def build(pick: dict[str, Any], n: int) -> VQAItem:
        i, j = int(pick["img_id"]), int(pick["question_id"])
        if not 0 <= i < len(records) or not isinstance(records[i], dict):
            raise ValueError(f"img_id {i} is not a record of {RECORDS}")
        record = records[i]
        questions = record.get("VQA_Final")
        if not isinstance(questions, list) or not 0 <= j < len(questions) or not isinstance(questions[j], dict):
            raise ValueError(f"question_id {j} is not in record {i}'s VQA_Final")
        answer = text_field(questions[j], "VQA_answer").rstrip(".").strip().lower()
        if answer not in ("yes", "no"):
            raise ValueError(f"VQA_answer of record {i} question {j} is {answer!r}, not Yes or No")
        return VQAItem(
            id=f"{i}/{j}",
            images=_pair_images(folder, record, f"record {i}"),
            question=text_field(questions[j], "VQA_question"),
            answer=answer,
            answer_type="closed",
            patient=_patient(record),
            image_labels=PAIR_LABELS,
        )

    return collect(LoadReport("temmed", split, []), selected, json_rows(selected), build)


def load_temmed_report(folder: Path, split: str) -> LoadReport:
    """Change-report generation: every record's ``condition_changes_report`` from its image pair."""
    _test_only(split)
    path = folder / RECORDS

    def build(record: dict[str, Any], i: int) -> VQAItem:
        images = _pair_images(folder, record, "the row")
        return VQAItem(
            id=str(i),
            images=images,
            question=REPORT_INSTRUCTION,
            answer=text_field(record, "condition_changes_report"),
            answer_type="report",
            patient=_patient(record),
            image_labels=PAIR_LABELS,
            long_answer=True,
        )

    return collect(LoadReport("temmed-report", split, []), path, json_rows(path), build)


def load_temmed_pairs(folder: Path, split: str) -> LoadReport:
    """Image-pair selection: which of three prior/current pairs shows the stated change."""
    _test_only(split)
    records = json_rows(folder / RECORDS)
    path = folder / "TestSet_ImagePairSelection.json"

    def build(row: dict[str, Any], n: int) -> VQAItem:
        options = row["option"]
        if not isinstance(options, dict) or sorted(options) != ["A", "B", "C"]:
            raise ValueError("field 'option' is not {A, B, C: record index}")
        right = text_field(row, "right_option").upper()
        if right not in options:
            raise ValueError(f"right_option {right!r} is not one of A, B, C")
        images: list[Path] = []
        labels: list[str] = []
        for letter in ("A", "B", "C"):
            i = int(options[letter])
            if not 0 <= i < len(records):
                raise ValueError(f"option {letter} points at record {i}, which {RECORDS} does not have")
            images += _pair_images(folder, records[i], f"record {i}")
            labels += [f"{letter}: {PAIR_LABELS[0]}", PAIR_LABELS[1]]
        change = text_field(row, "condition_change")
        return VQAItem(
            id=str(n),
            images=tuple(images),
            question=PAIR_INSTRUCTION.format(change=change),
            answer=right,
            answer_type="closed",
            image_labels=tuple(labels),
            long_answer=True,
        )

    return collect(LoadReport("temmed-pairs", split, []), path, json_rows(path), build)


TEMMED_SUITES: dict[str, Callable[[Path, str], LoadReport]] = {
    "temmed": load_temmed,
    "temmed-report": load_temmed_report,
    "temmed-pairs": load_temmed_pairs,
}
"""TemMed-Bench's tasks, by suite name."""
