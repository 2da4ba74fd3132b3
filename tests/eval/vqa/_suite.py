"""A tiny suite in VQA-RAD's documented format: real JPEG files, JSON records, one bad row of each kind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def _image(path: Path, seed: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = (rng.random((48, 64)) * 255).astype(np.uint8)
    pixels[10:30, 20 + seed : 40 + seed] = 255  # a bright structure that moves with the seed
    Image.fromarray(pixels).save(path, quality=95)


def _row(qid: int, image: str, question: str, answer: str, kind: str, organ: str = "CHEST") -> dict[str, object]:
    return {
        "qid": qid,
        "image_name": image,
        "image_organ": organ,
        "answer": answer,
        "answer_type": kind,
        "question_type": "PRES",
        "question": question,
        "phrase_type": "freeform",
    }


def write_vqa_rad(folder: Path) -> Path:
    """Write the tiny suite under ``folder``: 6 good training rows and 1 bad, 2 good test rows and 2 bad."""
    (folder / "images").mkdir(parents=True)
    for i in range(4):
        _image(folder / "images" / f"img{i}.jpg", i)
    train = [
        _row(1, "img0.jpg", "Is there a pneumothorax?", "yes", "CLOSED"),
        _row(2, "img0.jpg", "Which lung is affected?", "left", "OPEN"),
        _row(3, "img1.jpg", "Is there a pneumothorax?", "no", "CLOSED"),
        _row(4, "img1.jpg", "Is the heart enlarged?", "no", "CLOSED"),
        _row(5, "img2.jpg", "What organ is shown?", "brain", "OPEN", "HEAD"),
        _row(6, "img2.jpg", "Is this a CT?", "no", "CLOSED", "HEAD"),
        {"qid": 7, "image_name": "img1.jpg", "answer": "no", "answer_type": "CLOSED"},  # no question
    ]
    test = [
        _row(101, "img3.jpg", "Is there a pneumothorax present?", "no", "CLOSED"),
        _row(102, "img3.jpg", "Which side is the lesion on?", "left", "OPEN"),
        _row(103, "missing.jpg", "Is this normal?", "yes", "CLOSED"),  # its image is not there
        _row(104, "img3.jpg", "Is the heart big?", "no", "SOMETIMES"),  # not CLOSED / OPEN
    ]
    (folder / "trainset.json").write_text(json.dumps(train))
    (folder / "testset.json").write_text(json.dumps(test))
    return folder
