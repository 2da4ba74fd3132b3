"""The case library: what drafting opens instead of rebuilding indexes from the embedding arrays."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.core.config import RagConfig, load_config
from rag.core.errors import ManifestMismatchError, VectorIndexError
from rag.draft import Drafter
from rag.index.library import FINDINGS, LIBRARY_DIR, CaseLibrary, store_stamp
from rag.retrieve import CaseRetriever
from rag.store import ReportSection, open_store
from rag.vocab.findings import PHENOTYPES
from rag.vocab.grades import statement_grade
from rag.vocab.sections import ECHO_SECTIONS
from tests.conftest import KEY, EmbeddedArchive


@pytest.fixture
def workspace_copy(embedded_archive: EmbeddedArchive, tmp_path: Path) -> RagConfig:
    """A private copy of the embedded archive's workspace (store, media, checkpoint, embeddings, library)."""
    home = tmp_path / "ws"
    shutil.copytree(embedded_archive.config.home, home)
    return load_config(home=home, pseudonym_key=KEY, ingest={"frames": 16, "size": 64})


def _library(cfg: RagConfig) -> Path:
    return cfg.indexes_dir / LIBRARY_DIR


def test_drafts_from_the_library_alone_after_the_embedding_arrays_are_deleted(workspace_copy: RagConfig) -> None:
    before = Drafter(workspace_copy, kb=None)
    study = int(before.retriever.studies.study_ids[0])
    expected = before.draft(study)
    before.store.close()

    removed = list((workspace_copy.home / "embeddings").rglob("*.npy"))
    assert removed
    for path in removed:
        path.unlink()

    drafter = Drafter(workspace_copy, kb=None)
    report = drafter.draft(study)
    assert report.text == expected.text
    assert [m.model_dump() for m in report.measurements] == [m.model_dump() for m in expected.measurements]
    assert drafter.retriever.library is not None
    drafter.store.close()


def test_library_retrieval_equals_retrieval_from_the_embeddings(embedded_archive: EmbeddedArchive) -> None:
    store = open_store(embedded_archive.config.db_url)
    try:
        library = CaseLibrary.open(_library(embedded_archive.config), store=store)
        opened = CaseRetriever(store, library=library)
        built = CaseRetriever(store, embedded_archive.embeddings)
        for study in opened.studies.study_ids[:4]:
            a = opened.retrieve(int(study), k=3, with_text=False)
            b = built.retrieve(int(study), k=3, with_text=False)
            assert a.no_evidence == b.no_evidence
            for section, hits in b.sections.items():
                got = a.sections[section]
                assert [h.report_section_id for h in got] == [h.report_section_id for h in hits]
                assert np.allclose([h.similarity for h in got], [h.similarity for h in hits], atol=1e-5)
    finally:
        store.close()


def test_library_grades_are_those_the_section_texts_state(embedded_archive: EmbeddedArchive) -> None:
    store = open_store(embedded_archive.config.db_url)
    try:
        library = CaseLibrary.open(_library(embedded_archive.config))
        with store.session() as s:
            for row, section_id in enumerate(library.catalog.section_ids[:40]):
                stored = s.get(ReportSection, int(section_id))
                assert stored is not None
                for col, name in enumerate(FINDINGS):
                    p = PHENOTYPES[name]
                    assert p.rule is not None
                    want = statement_grade(stored.text, p.rule) if p.section == stored.name else 0
                    assert int(library.grades[row, col]) == want, (stored.name, name)
        assert set(np.asarray(library.catalog.section_codes)) <= set(range(len(ECHO_SECTIONS)))
    finally:
        store.close()


def test_a_library_built_for_another_checkpoint_is_refused(workspace_copy: RagConfig) -> None:
    from rag.encoders import create, save_checkpoint

    checkpoint = workspace_copy.home / "checkpoints" / "last.pt"
    other = create("echo-video-tiny")
    for p in other.parameters():  # other weights: another sha256
        p.data.add_(0.01)
    save_checkpoint(other, checkpoint)
    drafter = Drafter(workspace_copy, kb=None)
    with pytest.raises(ManifestMismatchError) as err:
        _ = drafter.retriever
    message = str(err.value)
    assert "checkpoint" in message and "rag index library" in message
    drafter.store.close()


def test_a_library_older_than_the_store_is_refused_until_updated(workspace_copy: RagConfig) -> None:
    from rag.store import Report, Study

    folder = _library(workspace_copy)
    store = open_store(workspace_copy.db_url)
    try:
        stale_stamp = store_stamp(store)
        # the store gains a report section: a later report of a stored study
        with store.session() as s:
            study = s.query(Study).order_by(Study.id).first()
            assert study is not None
            report = Report(
                study_id=study.id,
                kind="echo",
                content_sha256="0" * 64,
                text="Mitral Valve: Severe mitral regurgitation.",
            )
            s.add(report)
            s.flush()
            s.add(
                ReportSection(report_id=report.id, name="Mitral Valve", text="Severe mitral regurgitation.", position=0)
            )
        assert store_stamp(store) != stale_stamp
        with pytest.raises(ManifestMismatchError, match=r"older than the case store.*--update"):
            CaseLibrary.open(folder, store=store)

        counts = CaseLibrary.open(folder).update(store, next((workspace_copy.home / "embeddings").iterdir()))
        assert counts["sections_added"] == 1
        library = CaseLibrary.open(folder, store=store)  # up to date now
        new_id = int(library.catalog.section_ids[-1])
        col = FINDINGS.index("mitral_regurgitation")
        assert int(library.grades[-1, col]) == 3
        # a section without a text vector is catalogued but not searchable until `rag embed` runs
        assert new_id not in library.index("Mitral Valve")
    finally:
        store.close()


def test_opening_a_folder_without_a_library_says_how_to_build_one(tmp_path: Path) -> None:
    with pytest.raises(VectorIndexError, match="rag index library"):
        CaseLibrary.open(tmp_path / "nothing")


def test_drafter_without_a_library_names_the_command(workspace_copy: RagConfig) -> None:
    from rag.draft.drafter import DraftingError

    shutil.rmtree(_library(workspace_copy))
    drafter = Drafter(workspace_copy, kb=None)
    with pytest.raises(DraftingError, match="rag index library"):
        _ = drafter.retriever
    drafter.store.close()


def test_a_damaged_library_is_refused_with_the_rebuild_command(workspace_copy: RagConfig) -> None:
    folder = _library(workspace_copy)
    (folder / "catalog" / "section_ids.npy").write_bytes(b"not an array")
    with pytest.raises(VectorIndexError, match=r"cannot be read.*rag index library"):
        CaseLibrary.open(folder)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(VectorIndexError, match=r"not a case-library manifest.*rag index library"):
        CaseLibrary.open(folder)


def test_a_failed_build_leaves_no_library_and_a_foreign_update_changes_nothing(
    workspace_copy: RagConfig, tmp_path: Path
) -> None:
    store = open_store(workspace_copy.db_url)
    try:
        target = tmp_path / "lib"
        with pytest.raises(VectorIndexError, match="not an embeddings folder"):
            CaseLibrary.build(store, tmp_path / "no-embeddings", target)
        assert not (target / "manifest.json").exists()

        folder = _library(workspace_copy)
        before = (folder / "manifest.json").read_bytes()
        emb = next((workspace_copy.home / "embeddings").iterdir())
        manifest = json.loads((emb / "manifest.json").read_text())
        manifest["checkpoint_sha256"] = "f" * 64
        (emb / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(ManifestMismatchError, match="checkpoint"):
            CaseLibrary.open(folder).update(store, emb)
        assert (folder / "manifest.json").read_bytes() == before
        CaseLibrary.open(folder, store=store)  # still whole and current
    finally:
        store.close()


def test_library_command_builds_and_names_bad_settings(workspace_copy: RagConfig, tmp_path: Path) -> None:
    import yaml
    from typer.testing import CliRunner

    from rag.cli import app

    config = tmp_path / "rag.yaml"
    config.write_text(yaml.safe_dump({"home": str(workspace_copy.home), "pseudonym_key": KEY}))
    runner = CliRunner()
    out = tmp_path / "lib"
    built = runner.invoke(app, ["index", "library", "--out", str(out), "-c", str(config)])
    assert built.exit_code == 0, built.output
    assert "built" in built.output and (out / "manifest.json").is_file()
    bad = runner.invoke(app, ["index", "library", "--kind", "hnws", "--out", str(out), "-c", str(config)])
    assert bad.exit_code == 2 and "Unknown index kind 'hnws'" in bad.output
    (workspace_copy.home / "checkpoints" / "last.pt").unlink()
    missing = runner.invoke(app, ["index", "library", "--out", str(tmp_path / "x"), "-c", str(config)])
    assert missing.exit_code == 2 and "no checkpoint" in missing.output and "--embeddings" in missing.output
