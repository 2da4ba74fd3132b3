"""Suite loaders: each reads a suite's documented files into :class:`~rag.eval.vqa.items.VQAItem`.

Every loader names the file, row and field of anything malformed, leaves that row out and goes on
(:class:`~rag.eval.vqa.items.LoadReport`); a missing file or an unknown suite is an error at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.core.errors import RagError
from rag.eval.vqa.items import LoadReport, Skipped, VQAItem

__all__ = ["SUITES", "VQAError", "answer_type", "collect", "json_rows", "load_suite", "text_field"]


class VQAError(RagError):
    """A suite that cannot be read at all: unknown name, missing file, not the documented format."""


def text_field(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"field {key!r} is missing or empty")
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError(f"field {key!r} is a {type(value).__name__}, not text")
    return str(value).strip()


def json_rows(path: Path) -> list[Any]:
    if not path.is_file():
        raise VQAError(f"{path} not found: point --data at the suite's folder")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise VQAError(f"{path} is not readable JSON: {e}") from e
    if not isinstance(data, list):
        raise VQAError(f"{path} holds a {type(data).__name__}; the suite's format is a JSON list of records")
    return data


def answer_type(row: dict[str, Any]) -> str:
    """A row's ``answer_type`` as ``closed`` / ``open`` (ValueError for anything else)."""
    kind = text_field(row, "answer_type").upper()
    if kind not in ("CLOSED", "OPEN"):
        raise ValueError(f"field 'answer_type' is {kind!r}, not CLOSED or OPEN")
    return kind.lower()


def collect(
    report: LoadReport, path: Path, rows: list[Any], build: Callable[[dict[str, Any], int], VQAItem | None]
) -> LoadReport:
    """Build an item of every record; a row that is not a record, lacks a field or that ``build`` rejects
    (ValueError) is named and left out; None means "not counted" (e.g. another language)."""
    for i, row in enumerate(rows):
        try:
            if not isinstance(row, dict):
                raise ValueError(f"a {type(row).__name__}, not a record")
            item = build(row, i)
        except (KeyError, TypeError) as e:
            report.skipped.append(Skipped(str(path), i, f"field {e} is missing or not an integer"))
            continue
        except ValueError as e:
            report.skipped.append(Skipped(str(path), i, str(e)))
            continue
        if item is not None:
            report.items.append(item)
    return report


def load_vqa_rad(folder: Path, split: str) -> LoadReport:
    """VQA-RAD, MEVF split: ``trainset.json`` / ``testset.json`` with records ``qid, image_name,
    image_organ, answer, answer_type (CLOSED/OPEN), question_type, question`` and ``images/``."""
    name = {"train": "trainset.json", "test": "testset.json"}.get(split)
    if name is None:
        raise VQAError(f"VQA-RAD has the splits train and test, not {split!r}")
    path = folder / name

    def build(row: dict[str, Any], i: int) -> VQAItem | None:
        kind = answer_type(row)
        image = folder / "images" / text_field(row, "image_name")
        if not image.is_file():
            raise ValueError(f"image {image.name} not found in {image.parent}")
        return VQAItem(
            id=text_field(row, "qid"),
            images=(image,),
            question=text_field(row, "question"),
            answer=text_field(row, "answer"),
            answer_type=kind,
            categories={
                "organ": str(row.get("image_organ") or "").strip().upper() or "UNKNOWN",
                "question_type": str(row.get("question_type") or "").strip().upper() or "UNKNOWN",
            },
        )

    return collect(LoadReport("vqa-rad", split, []), path, json_rows(path), build)


SUITES: dict[str, Callable[[Path, str], LoadReport]] = {"vqa-rad": load_vqa_rad}
"""Suite name -> loader(folder, split)."""


def load_suite(suite: str, folder: Path | str, split: str) -> LoadReport:
    """Load one split of a suite from its folder.

    Raises:
        VQAError: an unknown suite, a missing file or a file not in the suite's documented format.
    """
    from rag.eval.vqa.temmed import TEMMED_SUITES

    known = {**SUITES, **TEMMED_SUITES}
    loader = known.get(suite)
    if loader is None:
        raise VQAError(f"unknown suite {suite!r}; known: {', '.join(sorted(known))}")
    return loader(Path(folder), split)


def load_slake(folder: Path, split: str) -> LoadReport:
    """SLAKE: ``train.json`` / ``validate.json`` / ``test.json`` with records ``img_id, img_name, question,
    answer, q_lang, modality, answer_type, content_type`` and ``imgs/<img_name>``; English questions only
    (``q_lang == "en"``; the others are not counted as left out)."""
    name = {"train": "train.json", "val": "validate.json", "test": "test.json"}.get(split)
    if name is None:
        raise VQAError(f"SLAKE has the splits train, val and test, not {split!r}")
    path = folder / name

    def build(row: dict[str, Any], i: int) -> VQAItem | None:
        if str(row.get("q_lang", "en")).lower() != "en":
            return None
        kind = answer_type(row)
        image = folder / "imgs" / text_field(row, "img_name")
        if not image.is_file():
            raise ValueError(f"image {image} not found")
        return VQAItem(
            id=str(row.get("qid", i)),
            images=(image,),
            question=text_field(row, "question"),
            answer=text_field(row, "answer"),
            answer_type=kind,
            categories={
                "modality": str(row.get("modality") or "UNKNOWN"),
                "content_type": str(row.get("content_type") or "UNKNOWN"),
            },
            patient=str(row["img_id"]) if row.get("img_id") is not None else None,
        )

    return collect(LoadReport("slake", split, []), path, json_rows(path), build)


_LETTERS = "ABCDE"


def load_medbookvqa(folder: Path, split: str) -> LoadReport:
    """MedBookVQA: ``data.json`` with records ``_id, QAtype, Question, Answer, Distractors[3],
    correct_choice, image_path, LABEL{Modality, Anatomy, Department}``; four options, the answer at the
    ``correct_choice`` letter and the distractors in order at the others. A test suite only."""
    if split != "test":
        raise VQAError(f"MedBookVQA has a test split only, not {split!r}: use an answerer without a corpus")
    path = folder / "data.json"

    def build(row: dict[str, Any], i: int) -> VQAItem | None:
        distractors = row.get("Distractors")
        if not isinstance(distractors, list) or len(distractors) != 3:
            raise ValueError("field 'Distractors' is not a list of 3 options")
        letter = text_field(row, "correct_choice").strip("() .").upper()
        if letter not in _LETTERS[:4]:
            raise ValueError(f"field 'correct_choice' is {letter!r}, not one of A-D")
        others = iter(str(d) for d in distractors)
        options = {c: (text_field(row, "Answer") if c == letter else next(others)) for c in _LETTERS[:4]}
        image = folder / text_field(row, "image_path")
        if not image.is_file():
            raise ValueError(f"image {image} not found")
        raw_label = row.get("LABEL")
        label: dict[str, Any] = raw_label if isinstance(raw_label, dict) else {}
        return VQAItem(
            id=text_field(row, "_id"),
            images=(image,),
            question=text_field(row, "Question"),
            answer=letter,
            answer_type="closed",
            options=options,
            categories={k.lower(): str(label.get(k) or "UNKNOWN") for k in ("Modality", "Anatomy", "Department")},
        )

    return collect(LoadReport("medbookvqa", split, []), path, json_rows(path), build)


def load_gmai_mmbench(folder: Path, split: str) -> LoadReport:
    """GMAI-MMBench as VLMEvalKit ships it: ``GMAI-MMBench_VAL.tsv`` (split ``train``: the corpus) and
    ``GMAI-MMBench_TEST.tsv`` (split ``test``), columns ``index, image (base64), question, A..E, answer``
    and category columns; images are decoded once into a cache folder beside the TSV's hash."""
    import base64
    import binascii
    import csv
    import hashlib
    import sys
    import tempfile

    name = {"train": "GMAI-MMBench_VAL.tsv", "val": "GMAI-MMBench_VAL.tsv", "test": "GMAI-MMBench_TEST.tsv"}.get(split)
    if name is None:
        raise VQAError(f"GMAI-MMBench has the splits train (its VAL file), val and test, not {split!r}")
    path = folder / name
    if not path.is_file():
        raise VQAError(f"{path} not found: point --data at the folder of VLMEvalKit's GMAI-MMBench TSV files")
    digest = hashlib.sha256(str(path.resolve()).encode() + str(path.stat().st_mtime_ns).encode()).hexdigest()[:16]
    images = Path(tempfile.gettempdir()) / "rag-vqa-images" / digest
    images.mkdir(parents=True, exist_ok=True)
    report = LoadReport("gmai-mmbench", split, [])
    csv.field_size_limit(sys.maxsize)
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        missing = {"index", "image", "question", "answer"} - set(reader.fieldnames or [])
        if missing:
            raise VQAError(f"{path}: columns {sorted(missing)} missing; the format is VLMEvalKit's TSV")
        extra = [c for c in reader.fieldnames or [] if c not in {"index", "image", "question", "answer", *_LETTERS}]
        for i, row in enumerate(reader, start=1):
            try:
                options = {c: row[c].strip() for c in _LETTERS if (row.get(c) or "").strip()}
                if len(options) < 2:
                    raise ValueError("fewer than two options in columns A-E")
                answer = text_field(row, "answer").upper()
                if answer not in options:
                    raise ValueError(f"field 'answer' is {answer!r}, not one of the options {sorted(options)}")
                try:
                    data = base64.b64decode(text_field(row, "image"), validate=True)
                except binascii.Error as e:
                    raise ValueError(f"field 'image' is not base64: {e}") from e
                image = images / f"{text_field(row, 'index')}.img"
                if not image.is_file():
                    image.write_bytes(data)
                report.items.append(
                    VQAItem(
                        id=text_field(row, "index"),
                        images=(image,),
                        question=text_field(row, "question"),
                        answer=answer,
                        answer_type="closed",
                        options=options,
                        categories={c: str(row.get(c) or "") for c in extra},
                    )
                )
            except ValueError as e:
                report.skipped.append(Skipped(str(path), i, str(e)))
    return report


SUITES.update({"slake": load_slake, "medbookvqa": load_medbookvqa, "gmai-mmbench": load_gmai_mmbench})


def load_smmile(folder: Path, split: str) -> LoadReport:
    """SMMILE (multimodal in-context learning): ``data.json`` rows ``problem_id, order, question, answer,
    image`` (a path under the folder); a problem's rows sorted by ``order``: the last is the query, the
    others its in-context examples in that order. The options of the multiple-choice form are the
    problem's distinct answers (A, B, ... in order of appearance). A test suite only; a problem with a
    bad row is left out whole (its examples would be incomplete)."""
    if split != "test":
        raise VQAError(f"SMMILE has a test split only, not {split!r}: use an answerer without a corpus")
    path = folder / "data.json"
    report = LoadReport("smmile", split, [])
    problems: dict[str, list[tuple[int, int, VQAItem]]] = {}
    bad: dict[str, str] = {}
    for i, row in enumerate(json_rows(path)):
        key = str(row.get("problem_id", f"row {i}")) if isinstance(row, dict) else f"row {i}"
        try:
            if not isinstance(row, dict):
                raise ValueError(f"a {type(row).__name__}, not a record")
            try:
                order = int(row.get("order"))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise ValueError(f"field 'order' is {row.get('order')!r}, not an integer") from None
            image = folder / text_field(row, "image")
            if not image.is_file():
                raise ValueError(f"image {image} not found")
            item = VQAItem(f"{key}/{order}", (image,), text_field(row, "question"), text_field(row, "answer"), "open")
            problems.setdefault(text_field(row, "problem_id"), []).append((order, i, item))
        except ValueError as e:
            report.skipped.append(Skipped(str(path), i, str(e)))
            bad.setdefault(key, str(e))
    for key, rows in problems.items():
        if key in bad:
            continue
        rows.sort(key=lambda r: r[0])
        *examples, (_, _, query) = [r for r in rows]
        answers = list(dict.fromkeys(it.answer for _, _, it in rows))
        options = {_LETTERS_ALL[j]: a for j, a in enumerate(answers)} if len(answers) > 1 else {}
        report.items.append(
            VQAItem(
                id=key,
                images=query.images,
                question=query.question,
                answer=query.answer,
                answer_type="open",
                examples=tuple(it for _, _, it in examples),
                categories={"examples": str(len(examples))},
                options={},
            )
        )
        if options:
            letter = next(k for k, v in options.items() if v == query.answer)
            report.items.append(
                VQAItem(
                    id=f"{key}/mcqa",
                    images=query.images,
                    question=query.question,
                    answer=letter,
                    answer_type="closed",
                    options=options,
                    examples=tuple(it for _, _, it in examples),
                    categories={"examples": str(len(examples))},
                )
            )
    return report


_LETTERS_ALL = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
SUITES["smmile"] = load_smmile


def _plain_pickle(path: Path) -> Any:
    """Unpickle a file of plain lists, dicts, strings and numbers only: no class is ever imported,
    so a crafted file cannot run code."""
    import pickle

    class Plain(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            raise pickle.UnpicklingError(f"{module}.{name} is not plain data")

    if not path.is_file():
        raise VQAError(f"{path} not found: point --data at PathVQA's folder (qas/ and images/)")
    try:
        with path.open("rb") as f:
            return Plain(f).load()
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        raise VQAError(f"{path} is not a pickle of plain records ({e}); PathVQA ships lists of dicts") from e


def load_pathvqa(folder: Path, split: str) -> LoadReport:
    """PathVQA as released: ``qas/<split>/<split>_qa.pkl`` (a list of records ``image, question, answer``)
    and ``images/<split>/<image>.jpg``; splits train, val and test. A yes/no answer makes the item
    closed (as MedEvalKit scores it), any other open."""
    if split not in ("train", "val", "test"):
        raise VQAError(f"PathVQA has the splits train, val and test, not {split!r}")
    path = folder / "qas" / split / f"{split}_qa.pkl"
    rows = _plain_pickle(path)
    if not isinstance(rows, list):
        raise VQAError(f"{path} holds a {type(rows).__name__}; PathVQA's format is a list of records")

    def build(row: dict[str, Any], i: int) -> VQAItem | None:
        name = text_field(row, "image")
        image = folder / "images" / split / (name if name.lower().endswith((".jpg", ".png")) else f"{name}.jpg")
        if not image.is_file():
            raise ValueError(f"image {image} not found")
        answer = text_field(row, "answer")
        return VQAItem(
            id=str(row.get("question_id", f"{split}-{i}")),
            images=(image,),
            question=text_field(row, "question"),
            answer=answer,
            answer_type="closed" if answer.lower() in ("yes", "no") else "open",
        )

    return collect(LoadReport("pathvqa", split, []), path, rows, build)


SUITES["pathvqa"] = load_pathvqa
