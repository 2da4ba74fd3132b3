from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.kb import KBError, KBModelMismatchError, KnowledgeBase, MiniLMEmbedder, add_documents, read_manifest
from rag.kb.store import CHUNKS, DENSE, MANIFEST, load_state
from tests.kb.conftest import write_docs

LV = """# Left ventricle

## Systolic function

LVEF below 30% is severely abnormal. Global longitudinal strain near -20% is normal.

## Size

LVIDd above 58.4 mm in men is dilated.
"""

RV = """# Right ventricle

TAPSE below 17 mm and S' below 9.5 cm/s indicate RV systolic dysfunction.
"""


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    return write_docs(tmp_path / "notes", {"lv.md": LV, "sub/rv.markdown": RV, "plain.txt": "IVC 2.1 cm.\n"})


def test_add_is_idempotent_and_names_documents_by_folder(docs: Path, tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    kb = tmp_path / "kb"
    first = add_documents([docs], kb, embedder=embedder)
    assert sorted(first.added) == ["notes/lv.md", "notes/plain.txt", "notes/sub/rv.markdown"]
    assert first.total_chunks == first.chunks_added == 4 and first.changed
    manifest_bytes = (kb / MANIFEST).read_bytes()
    mtimes = {p.name: p.stat().st_mtime_ns for p in kb.iterdir()}

    again = add_documents([docs], kb, embedder=embedder)
    assert again.added == again.replaced == () and sorted(again.unchanged) == sorted(first.added)
    assert not again.changed and again.total_chunks == 4
    assert (kb / MANIFEST).read_bytes() == manifest_bytes
    assert {p.name: p.stat().st_mtime_ns for p in kb.iterdir()} == mtimes

    single = add_documents(str(docs / "lv.md"), kb, embedder=embedder)  # one path, not in a list
    assert single.added == ("lv.md",)  # a file given directly is named by its file name


def test_files_hold_what_the_manifest_says(docs: Path, tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    from rag.encoders.towers.minilm import weights_sha256

    kb = tmp_path / "kb"
    add_documents([docs], kb, embedder=embedder)
    manifest = read_manifest(kb)
    assert manifest.embedding_model == "all-MiniLM-L6-v2" and manifest.embedding_sha256 == weights_sha256()
    assert manifest.dim == 384 and manifest.count == 4 and len(manifest.documents) == 3
    assert set(manifest.files) >= {CHUNKS, DENSE, "bm25.vocab.json"}
    state = load_state(kb)
    assert state.dense.dtype == np.float32 and state.dense.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(state.dense, axis=1), 1.0, atol=1e-5)
    rows = [json.loads(line) for line in (kb / CHUNKS).read_text().splitlines()]
    assert [r["chunk_id"] for r in rows] == [c.chunk_id for c in state.chunks]
    # row i of dense.npy is the embedding of chunk i (heading path + text)
    for i in (0, 3):
        np.testing.assert_allclose(state.dense[i], embedder.encode([state.chunks[i].indexed_text])[0], atol=1e-5)


def test_a_changed_document_replaces_its_chunks_only(docs: Path, tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    kb = tmp_path / "kb"
    add_documents([docs], kb, embedder=embedder)
    before = load_state(kb)
    rv_before = {
        c.chunk_id: before.dense[i] for i, c in enumerate(before.chunks) if c.source == "notes/sub/rv.markdown"
    }

    (docs / "lv.md").write_text(LV.replace("58.4 mm", "58.5 mm") + "\n## Mass\n\nLV mass index above 115 g/m2.\n")
    result = add_documents([docs], kb, embedder=embedder)
    assert result.replaced == ("notes/lv.md",) and sorted(result.unchanged) == [
        "notes/plain.txt",
        "notes/sub/rv.markdown",
    ]
    assert result.chunks_removed == 2 and result.chunks_added == 3 and result.total_chunks == 5

    after = load_state(kb)
    lv = [c for c in after.chunks if c.source == "notes/lv.md"]
    assert [c.chunk_id for c in lv] == ["notes/lv.md#1", "notes/lv.md#2", "notes/lv.md#3"]
    assert "58.5 mm" in lv[1].text and lv[2].heading == "Left ventricle > Mass"
    assert not any("58.4" in c.text for c in after.chunks)
    for i, c in enumerate(after.chunks):  # the unchanged document was not re-embedded
        if c.chunk_id in rv_before:
            np.testing.assert_array_equal(after.dense[i], rv_before[c.chunk_id])
    assert read_manifest(kb).document("notes/lv.md") is not None


def test_chunk_ids_are_the_same_when_the_same_files_are_added_again(
    docs: Path, tmp_path: Path, embedder: MiniLMEmbedder
) -> None:
    one = add_documents([docs], tmp_path / "a", embedder=embedder)
    two = add_documents([docs], tmp_path / "b", embedder=embedder)
    assert one.total_chunks == two.total_chunks
    ids_a = [c.chunk_id for c in load_state(tmp_path / "a").chunks]
    assert ids_a == [c.chunk_id for c in load_state(tmp_path / "b").chunks]
    assert "notes/lv.md#1" in ids_a and "notes/sub/rv.markdown#1" in ids_a


def test_unreadable_files_are_skipped_with_reasons_and_the_rest_added(
    docs: Path, tmp_path: Path, embedder: MiniLMEmbedder
) -> None:
    (docs / "image.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (docs / "empty.md").write_text("  \n\n")
    (docs / "latin1.txt").write_bytes("Pression auriculaire élevée".encode("latin-1"))
    (docs / "headings.md").write_text("# Only\n\n## Headings\n")
    (docs / "utf16.txt").write_text("LVEF 55%", encoding="utf-16")
    (docs / "ignored.pdf").write_bytes(b"%PDF-1.4")
    (docs / ".hidden.md").write_text("# Hidden\n\nnot added")
    result = add_documents([docs, tmp_path / "missing.md", docs / "ignored.pdf"], tmp_path / "kb", embedder=embedder)
    assert sorted(result.added) == ["notes/lv.md", "notes/plain.txt", "notes/sub/rv.markdown"]
    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    assert set(reasons) == {
        "image.md",
        "empty.md",
        "latin1.txt",
        "utf16.txt",
        "headings.md",
        "missing.md",
        "ignored.pdf",
    }
    assert "binary" in reasons["image.md"]
    assert reasons["empty.md"] == "empty file"
    assert "not UTF-8" in reasons["latin1.txt"] and "0xe9" in reasons["latin1.txt"]
    assert "no text" in reasons["headings.md"] and "UTF-16" in reasons["utf16.txt"]
    assert "no such file" in reasons["missing.md"]
    assert "unsupported file type '.pdf'" in reasons["ignored.pdf"]
    assert "skipped=7" in result.summary()


def test_two_files_with_the_same_source_name_in_one_batch(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    a = write_docs(tmp_path / "a", {"note.md": "# A\n\nfirst"})
    b = write_docs(tmp_path / "b", {"note.md": "# B\n\nsecond"})
    result = add_documents([a / "note.md", b / "note.md"], tmp_path / "kb", embedder=embedder)
    assert result.added == ("note.md",)
    assert len(result.skipped) == 1 and "same source name 'note.md'" in result.skipped[0].reason


def test_a_failed_write_leaves_the_previous_knowledge_base(
    docs: Path, tmp_path: Path, embedder: MiniLMEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb = tmp_path / "kb"
    add_documents([docs], kb, embedder=embedder)
    snapshot = {p.name: p.read_bytes() for p in kb.iterdir() if p.is_file()}
    write_docs(docs, {"new.md": "# New\n\nA new note on pericardial effusion."})

    def broken(index: object, folder: Path) -> list[str]:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("rag.kb.keyword.save_bm25", broken)
    with pytest.raises(OSError, match="No space left"):
        add_documents([docs], kb, embedder=embedder)
    assert {p.name: p.read_bytes() for p in kb.iterdir() if p.is_file()} == snapshot
    assert not [p for p in kb.iterdir() if p.name.startswith(".staging")]
    monkeypatch.undo()
    assert add_documents([docs], kb, embedder=embedder).added == ("notes/new.md",)


def test_another_minilm_is_refused_with_the_rebuild_hint(docs: Path, tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    kb = tmp_path / "kb"
    add_documents([docs], kb, embedder=embedder)
    path = kb / MANIFEST
    data = json.loads(path.read_text())
    data["embedding_sha256"] = "0" * 64
    path.write_text(json.dumps(data))
    with pytest.raises(KBModelMismatchError, match=r"rag kb add --rebuild") as err:
        KnowledgeBase.open(kb, embedder=embedder)
    assert "000000000000" in str(err.value) and str(kb) in str(err.value)
    with pytest.raises(KBModelMismatchError, match="--rebuild"):
        add_documents([docs], kb, embedder=embedder)

    rebuilt = add_documents([], kb, rebuild=True, embedder=embedder)
    assert rebuilt.rebuilt and rebuilt.total_chunks == read_manifest(kb).count == 4
    assert read_manifest(kb).embedding_sha256 == embedder.weights_sha256
    hits = KnowledgeBase.open(kb, embedder=embedder).search("TAPSE", k=1)
    assert hits[0].source == "notes/sub/rv.markdown"


def test_a_data_file_changed_behind_the_manifest_is_refused(
    docs: Path, tmp_path: Path, embedder: MiniLMEmbedder
) -> None:
    kb = tmp_path / "kb"
    add_documents([docs], kb, embedder=embedder)
    dense = np.load(kb / DENSE)
    np.save(kb / DENSE, dense[::-1].copy())
    with pytest.raises(KBError, match=r"dense\.npy does not match the manifest.*--rebuild"):
        KnowledgeBase.open(kb, embedder=embedder)
    with pytest.raises(KBError, match="does not match"):
        add_documents([docs], kb, embedder=embedder)
    add_documents([], kb, rebuild=True, embedder=embedder)
    assert len(KnowledgeBase.open(kb, embedder=embedder)) == 4


def test_a_missing_knowledge_base_is_a_clear_error(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    with pytest.raises(KBError, match=r"No knowledge base at .*rag kb add --starter"):
        KnowledgeBase.open(tmp_path / "nowhere", embedder=embedder)
