from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from rag.cli import app
from tests.ingest.test_pipeline import make_sample

runner = CliRunner()


def test_help_imports_no_heavy_library() -> None:
    """`rag --help` stays fast because the command line imports nothing heavy (timed in bench/startup.py)."""
    code = (
        "import sys; from rag.cli import app; "
        "print([m for m in ('numpy', 'pydicom', 'sqlalchemy', 'cv2', 'av', 'torch', 'faiss') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("[]"), out
    done = subprocess.run([sys.executable, "-m", "rag", "--help"], capture_output=True, text=True, check=True)
    assert "draft" in done.stdout


def test_ingest_command_prints_counts_and_reasons(dicom_dir: Path, tmp_path: Path, workspace: Path) -> None:
    sample = make_sample(tmp_path, dicom_dir)
    (sample / "junk.dcm").write_bytes(b"not dicom at all")
    result = runner.invoke(app, ["ingest", str(sample), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "ingested=5 skipped=1 duplicate=0" in result.output
    assert "junk.dcm: not a DICOM file" in result.output
    assert list((workspace / "ingest-reports").glob("ingest-*.json"))
    strict = runner.invoke(app, ["ingest", str(sample), "--no-progress", "--strict"])
    assert strict.exit_code == 1 and "ingested=0 skipped=1 duplicate=5" in strict.output
    info = runner.invoke(app, ["store", "info"])
    assert info.exit_code == 0 and "clips            1" in info.output


def test_config_error_is_one_clear_message(workspace: Path) -> None:
    (workspace / "rag.yaml").write_text("ingest:\n  size: -3\n")
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 2
    assert "ingest.size" in result.output and "greater than or equal to 16" in result.output


def test_train_refuses_a_negative_finding_temperature(workspace: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--out", str(tmp_path / "ck"), "--finding-temperature", "-1"])
    assert result.exit_code == 2
    assert "finding-temperature" in result.output
    assert not (tmp_path / "ck").exists()  # nothing started, nothing written


def test_train_refuses_an_unknown_schedule_before_writing(workspace: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--out", str(tmp_path / "ck"), "--schedule", "linear"])
    assert result.exit_code == 2
    assert "unknown learning-rate schedule 'linear'" in result.output
    assert not (tmp_path / "ck").exists()
