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

__all__ = ["SUITES", "VQAError", "load_suite"]


class VQAError(RagError):
    """A suite that cannot be read at all: unknown name, missing file, not the documented format."""


def _text(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"field {key!r} is missing or empty")
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError(f"field {key!r} is a {type(value).__name__}, not text")
    return str(value).strip()


def _json_rows(path: Path) -> list[Any]:
    if not path.is_file():
        raise VQAError(f"{path} not found: point --data at the suite's folder")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise VQAError(f"{path} is not readable JSON: {e}") from e
    if not isinstance(data, list):
        raise VQAError(f"{path} holds a {type(data).__name__}; the suite's format is a JSON list of records")
    return data


def load_vqa_rad(folder: Path, split: str) -> LoadReport:
    """VQA-RAD, MEVF split: ``trainset.json`` / ``testset.json`` with records ``qid, image_name,
    image_organ, answer, answer_type (CLOSED/OPEN), question_type, question`` and ``images/``."""
    name = {"train": "trainset.json", "test": "testset.json"}.get(split)
    if name is None:
        raise VQAError(f"VQA-RAD has the splits train and test, not {split!r}")
    path = folder / name
    report = LoadReport("vqa-rad", split, [])
    for i, row in enumerate(_json_rows(path)):
        try:
            if not isinstance(row, dict):
                raise ValueError(f"a {type(row).__name__}, not a record")
            kind = _text(row, "answer_type").upper()
            if kind not in ("CLOSED", "OPEN"):
                raise ValueError(f"field 'answer_type' is {kind!r}, not CLOSED or OPEN")
            image = folder / "images" / _text(row, "image_name")
            if not image.is_file():
                raise ValueError(f"image {image.name} not found in {image.parent}")
            report.items.append(
                VQAItem(
                    id=_text(row, "qid"),
                    images=(image,),
                    question=_text(row, "question"),
                    answer=_text(row, "answer"),
                    answer_type=kind.lower(),
                    categories={
                        "organ": str(row.get("image_organ") or "").strip().upper() or "UNKNOWN",
                        "question_type": str(row.get("question_type") or "").strip().upper() or "UNKNOWN",
                    },
                )
            )
        except ValueError as e:
            report.skipped.append(Skipped(str(path), i, str(e)))
    return report


SUITES: dict[str, Callable[[Path, str], LoadReport]] = {"vqa-rad": load_vqa_rad}
"""Suite name -> loader(folder, split)."""


def load_suite(suite: str, folder: Path | str, split: str) -> LoadReport:
    """Load one split of a suite from its folder.

    Raises:
        VQAError: an unknown suite, a missing file or a file not in the suite's documented format.
    """
    loader = SUITES.get(suite)
    if loader is None:
        raise VQAError(f"unknown suite {suite!r}; known: {', '.join(sorted(SUITES))}")
    return loader(Path(folder), split)
