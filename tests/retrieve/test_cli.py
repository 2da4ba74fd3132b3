from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from rag.cli.retrieve import retrieve_app
from rag.retrieve.weights import ViewWeights
from tests.retrieve.conftest import KEY, EmbeddedArchive

runner = CliRunner()


def _config(tmp_path: Path, archive: EmbeddedArchive) -> Path:
    path = tmp_path / "rag.yaml"
    path.write_text(yaml.safe_dump({"home": str(archive.config.home), "pseudonym_key": KEY}))
    return path


def test_fit_view_weights_then_cases_and_predict(embedded_archive: EmbeddedArchive, tmp_path: Path) -> None:
    config = _config(tmp_path, embedded_archive)
    emb = str(embedded_archive.embeddings)
    out = tmp_path / "weights.yaml"
    fitted = runner.invoke(
        retrieve_app,
        ["fit-view-weights", "--embeddings", emb, "--out", str(out), "--steps", "3", "--k", "3", "-c", str(config)],
    )
    assert fitted.exit_code == 0, fitted.output
    assert ViewWeights.load(out).matrix.shape == (15, 11)
    assert f"weights: {out}" in fitted.output
    assert (tmp_path / "weights.thresholds.json").is_file()

    from rag.store import Study, open_store

    store = open_store(embedded_archive.config.db_url)
    with store.session() as s:
        study = s.query(Study.id).order_by(Study.id).first()
    store.close()
    assert study is not None
    cases = runner.invoke(
        retrieve_app, ["cases", str(study[0]), "-e", emb, "-w", str(out), "--k", "2", "--json", "-c", str(config)]
    )
    assert cases.exit_code == 0, cases.output
    data = json.loads(cases.output)
    assert data["study_id"] == study[0] and data["params"]["k"] == 2
    for hits in data["sections"].values():
        assert all(h["study_id"] != study[0] and "similarity" in h for h in hits)
    predicted = runner.invoke(retrieve_app, ["predict", str(study[0]), "-e", emb, "--k", "3", "-c", str(config)])
    assert predicted.exit_code == 0, predicted.output
    assert "lvef" in predicted.output and "Left Ventricle" in predicted.output


def test_errors_are_one_line(embedded_archive: EmbeddedArchive, tmp_path: Path) -> None:
    config = _config(tmp_path, embedded_archive)
    bad = tmp_path / "bad.yaml"
    bad.write_text("Left Ventricel: {A4C: 1}\n")
    result = runner.invoke(
        retrieve_app, ["cases", "1", "-e", str(embedded_archive.embeddings), "-w", str(bad), "-c", str(config)]
    )
    assert result.exit_code == 2
    assert "error:" in result.output and "Left Ventricel" in result.output


def test_importing_the_commands_stays_light() -> None:
    code = (
        "import sys; import rag.cli.retrieve; "
        "print([m for m in ('numpy', 'sqlalchemy', 'torch', 'faiss') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cases_open_the_case_library_by_default(embedded_archive: EmbeddedArchive, tmp_path: Path) -> None:
    config = _config(tmp_path, embedded_archive)
    emb = str(embedded_archive.embeddings)
    from rag.store import Study, open_store

    store = open_store(embedded_archive.config.db_url)
    with store.session() as s:
        study = s.query(Study.id).order_by(Study.id).first()
    store.close()
    assert study is not None
    from_library = runner.invoke(retrieve_app, ["cases", str(study[0]), "--k", "2", "--json", "-c", str(config)])
    assert from_library.exit_code == 0, from_library.output
    from_embeddings = runner.invoke(
        retrieve_app, ["cases", str(study[0]), "-e", emb, "--k", "2", "--json", "-c", str(config)]
    )
    a, b = json.loads(from_library.output), json.loads(from_embeddings.output)
    assert a["params"]["embeddings"] == "library"
    for section, hits in b["sections"].items():
        assert [h["report_section_id"] for h in a["sections"][section]] == [h["report_section_id"] for h in hits]
