"""Change between chest X-ray visits on the real NIH ChestX-ray14 thumbnails, patients split apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rag.core.errors import RagError
from rag.eval.cxr_change import evaluate_cxr_change, visit_pairs
from rag.train.cxr import read_nih, split_patients
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def nih() -> Path:
    folder = shared_file("nih_cxr14_small")
    if not (folder / "labels.csv").is_file():
        pytest.skip("../shared/data/nih_cxr14_small is not here")
    return folder


def test_patients_never_sit_on_both_sides_and_the_follow_ups_are_all_there(nih: Path) -> None:
    images, skipped = read_nih(nih)
    assert len(images) == 1000 and not skipped
    train, held = split_patients(images)
    assert not train & held and len(train | held) == 264
    multi = {p for p in train | held if sum(im.patient == p for im in images) > 1}
    assert len(multi) == 136  # the folder's README: 136 patients with 2+ visits ...
    changed = {a.patient for a, b in visit_pairs(images, multi) if a.labels != b.labels}
    assert len(changed) == 82  # ... 82 of them with a change of findings between visits


def test_the_change_scores_are_auroc_with_intervals_on_held_out_pairs(nih: Path, tmp_path: Path) -> None:
    result = evaluate_cxr_change(nih)
    assert result.test_pairs == 162 and result.changed_pairs == 42
    for s in result.scores.values():
        assert 0.0 <= s["low"] <= s["auroc"] <= s["high"] <= 1.0
    probability = next(v for k, v in result.scores.items() if k.startswith("probability change"))
    assert probability["auroc"] > 0.5  # the fitted tower reads change better than a coin (point estimate)
    assert result.labels["Infiltration"]["new"] == 9
    paths = result.write(tmp_path)
    assert "| probability change" in paths[1].read_text()


def test_bad_rows_are_named_and_left_out(nih: Path, tmp_path: Path) -> None:
    lines = (nih / "labels.csv").read_text().splitlines()
    header, rows = lines[0], lines[1:4]
    (tmp_path / "NIH1000").symlink_to(nih / "NIH1000")
    broken = rows[1].replace(".png", "-gone.png", 1)
    unknown = rows[2].replace(rows[2].split(",")[2], "Dragons", 1)
    (tmp_path / "labels.csv").write_text("\n".join([header, rows[0], broken, unknown]) + "\n")
    images, skipped = read_nih(tmp_path)
    assert len(images) == 1 and len(skipped) == 2
    assert "line 3: image" in skipped[0] and "unknown labels ['Dragons']" in skipped[1]
    with pytest.raises(RagError, match=r"labels\.csv not found"):
        read_nih(tmp_path / "nowhere")


def test_the_command_prints_the_table(nih: Path, tmp_path: Path) -> None:
    from rag.cli import app

    result = CliRunner().invoke(app, ["eval", "cxr-change", "--data", str(nih), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "did the findings change?" in result.output and (tmp_path / "cxr-change.json").is_file()
    assert np.isfinite(float(result.output.split("| probability change (summed over the 14 labels) | ")[1][:5]))
