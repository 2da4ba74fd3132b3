"""Fixtures of the knowledge-base tests: the real MiniLM model and the starter knowledge base built once."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.kb import KnowledgeBase, MiniLMEmbedder, add_documents, starter_dir


@pytest.fixture(scope="session")
def embedder() -> MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the installed package (loaded once per test session)."""
    return MiniLMEmbedder()


@pytest.fixture(scope="session")
def starter_folder(tmp_path_factory: pytest.TempPathFactory, embedder: MiniLMEmbedder) -> Path:
    """A knowledge base holding the shipped starter documents (do not modify; copy it first)."""
    folder = tmp_path_factory.mktemp("starter") / "kb"
    result = add_documents([starter_dir()], folder, embedder=embedder)
    assert result.skipped == () and len(result.added) >= 5
    return folder


@pytest.fixture(scope="session")
def starter_kb(starter_folder: Path, embedder: MiniLMEmbedder) -> KnowledgeBase:
    return KnowledgeBase.open(starter_folder, embedder=embedder)


def write_docs(folder: Path, docs: dict[str, str]) -> Path:
    """Write ``{relative path: text}`` under ``folder``; returns ``folder``."""
    for name, text in docs.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder
