from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from rag.cli import app
from tests.kb.conftest import write_docs

runner = CliRunner()


def test_importing_the_kb_package_and_cli_is_cheap() -> None:
    code = (
        "import sys; import rag.kb, rag.cli.kb, rag.kb.store, rag.kb.search; "
        "print([m for m in ('numpy', 'bm25s', 'torch', 'sentence_transformers') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_add_starter_then_search_and_info(workspace: Path) -> None:
    added = runner.invoke(app, ["kb", "add", "--starter", "--no-progress"])
    assert added.exit_code == 0, added.output
    assert "added=7 replaced=0 unchanged=0 skipped=0" in added.output
    assert f"knowledge base: {workspace / 'kb'}" in added.output
    assert (workspace / "kb" / "manifest.json").is_file()

    again = runner.invoke(app, ["kb", "add", "--starter", "--no-progress"])
    assert again.exit_code == 0 and "added=0 replaced=0 unchanged=7" in again.output

    found = runner.invoke(app, ["kb", "search", "IVC collapse right atrial pressure", "-k", "2"])
    assert found.exit_code == 0, found.output
    first = found.output.splitlines()[0]
    assert (
        first.startswith("1. starter/right-heart-and-pressures.md#") and "Right atrial pressure from the IVC" in first
    )

    as_json = runner.invoke(app, ["kb", "search", "severe aortic stenosis", "--k", "3", "--json"])
    assert as_json.exit_code == 0, as_json.output
    hits = json.loads(as_json.output)
    assert len(hits) == 3 and {"chunk_id", "source", "heading", "text", "score", "dense_rank", "bm25_rank"} <= set(
        hits[0]
    )
    assert any(h["source"] == "starter/aortic-stenosis.md" for h in hits)

    info = runner.invoke(app, ["kb", "info"])
    assert info.exit_code == 0, info.output
    assert "all-MiniLM-L6-v2" in info.output and "matches the installed model" in info.output
    assert "starter/pericardium.md" in info.output
    manifest = json.loads(runner.invoke(app, ["kb", "info", "--json"]).output)
    assert manifest["count"] > 0 and len(manifest["documents"]) == 7


def test_add_reports_skipped_files_and_strict_exits_1(workspace: Path, tmp_path: Path) -> None:
    docs = write_docs(tmp_path / "docs", {"a.md": "# A\n\nLVEF 55%.", "empty.txt": ""})
    kb = tmp_path / "elsewhere"
    result = runner.invoke(app, ["kb", "add", str(docs), "--kb-dir", str(kb), "--no-progress", "--strict"])
    assert result.exit_code == 1
    assert "added=1" in result.output and f"skipped {docs / 'empty.txt'}: empty file" in result.output
    assert (kb / "manifest.json").is_file() and not (workspace / "kb").exists()


def test_errors_are_one_line_with_exit_code_2(workspace: Path) -> None:
    nothing = runner.invoke(app, ["kb", "add"])
    assert nothing.exit_code == 2 and "Nothing to add" in nothing.output
    missing = runner.invoke(app, ["kb", "search", "LVEF"])
    assert missing.exit_code == 2 and "No knowledge base at" in missing.output
    assert "rag kb add --starter" in missing.output
