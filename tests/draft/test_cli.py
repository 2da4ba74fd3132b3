"""``rag draft`` and ``rag demo`` from the command line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from rag.cli import app
from rag.draft import Report
from tests.conftest import KEY, EmbeddedArchive

runner = CliRunner()


def _config(tmp_path: Path, archive: EmbeddedArchive) -> Path:
    path = tmp_path / "rag.yaml"
    home = archive.config.home
    path.write_text(yaml.safe_dump({"home": str(home), "pseudonym_key": KEY, "ingest": {"frames": 16, "size": 64}}))
    return path


def test_draft_writes_markdown_html_and_json(embedded_archive: EmbeddedArchive, tmp_path: Path) -> None:
    from rag.draft import Drafter

    study = int(Drafter(embedded_archive.config, kb=None).retriever.studies.study_ids[0])
    cfg = _config(tmp_path, embedded_archive)
    outs = [tmp_path / "d.md", tmp_path / "d.html", tmp_path / "d.json"]
    args = ["draft", str(study), "--ground-truth", "-c", str(cfg)]
    for o in outs:
        args += ["--out", str(o)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"study {study}" in result.output and "Not a diagnosis" in result.output
    assert "Ground truth" in result.output
    assert all(o.is_file() and o.stat().st_size > 0 for o in outs)
    report = Report.from_json(outs[2].read_text())
    assert report.study_id == study
    assert "data:image/png;base64," in outs[1].read_text()
    assert json.loads(outs[2].read_text())["provenance"]["generator"] == "extractive"


def test_draft_errors_are_one_clear_line(embedded_archive: EmbeddedArchive, tmp_path: Path) -> None:
    cfg = _config(tmp_path, embedded_archive)
    for args, message in (
        (["draft", "-c", str(cfg)], "either a STUDY"),
        (["draft", "999999", "-c", str(cfg)], "999999"),
        (["draft", "1", "--generator", "gpt", "-c", str(cfg)], "unknown generator"),
        (["draft", "--held-out", "1", "-c", str(cfg)], "held out 0 patients"),
        (["draft", "1", "--checkpoint", str(tmp_path / "none.pt"), "-c", str(cfg)], "no encoder checkpoint"),
        (["draft", "1", "--out", str(tmp_path / "x.pdf"), "-c", str(cfg)], "report format"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code != 0, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output


@pytest.mark.slow
def test_demo_runs_the_main_job_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k in list(os.environ):
        if k.startswith("RAG_"):
            monkeypatch.delenv(k)
    home = tmp_path / "ws"
    monkeypatch.setenv("RAG_HOME", str(home))
    monkeypatch.setenv("RAG_PSEUDONYM_KEY", "demo-test-key")
    monkeypatch.setenv("RAG_INGEST__SIZE", "64")
    result = runner.invoke(app, ["demo", "--patients", "3", "--epochs", "1", "--workers", "1"])
    assert result.exit_code == 0, result.output
    for n in range(1, 10):
        assert f"[{n}/9]" in result.output
    assert "change thresholds: " in result.output and "# Comparison of study" in result.output
    assert "ingested=" in result.output and "skipped=0" in result.output
    assert "epoch 1:" in result.output and "total:" in result.output
    drafts = sorted((home / "drafts").glob("study-*"))
    assert {p.suffix for p in drafts} == {".md", ".json", ".html"}
    report = Report.from_json(next(p for p in drafts if p.suffix == ".json").read_text())
    assert report.sections and report.provenance.kb_chunks > 0
    # a second run reuses the archive and the checkpoint
    again = runner.invoke(app, ["demo", "--patients", "3", "--epochs", "1", "--workers", "1"])
    assert again.exit_code == 0, again.output
    assert "reused checkpoint" in again.output and "ingested=0" in again.output
