"""The tiny VQA-RAD-format suite of these tests (see ``_suite.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.eval.vqa._suite import write_vqa_rad


@pytest.fixture
def vqa_rad_folder(tmp_path: Path) -> Path:
    return write_vqa_rad(tmp_path / "vqa_rad")
