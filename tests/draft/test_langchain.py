"""The LangChain face: retrievers return Documents with provenance, the chain returns a Report."""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_core", reason="the langchain extra is not installed")

from rag.core.errors import RagError
from rag.draft import Drafter, Report
from rag.integrations.langchain import CaseRetrieverLC, KnowledgeBaseRetrieverLC, drafting_chain
from rag.kb import KnowledgeBase, add_documents, starter_dir
from tests.conftest import EmbeddedArchive


def test_retrievers_and_chain(embedded_archive: EmbeddedArchive, tmp_path: object) -> None:
    drafter = Drafter(embedded_archive.config, kb=None)
    study = int(drafter.retriever.studies.study_ids[0])
    docs = CaseRetrieverLC(drafter=drafter, section="Left Ventricle", k=2).invoke(str(study))
    assert 1 <= len(docs) <= 2
    assert all(d.metadata["section"] == "Left Ventricle" and d.metadata["study_id"] != study for d in docs)
    assert docs[0].page_content and docs[0].metadata["rank"] == 1
    with pytest.raises(RagError, match="study ID"):
        CaseRetrieverLC(drafter=drafter).invoke("left ventricle")

    from pathlib import Path

    kb_dir = Path(str(tmp_path)) / "kb"
    add_documents([starter_dir()], kb_dir)
    passages = KnowledgeBaseRetrieverLC(kb=KnowledgeBase.open(kb_dir), k=2).invoke("IVC collapse right atrial pressure")
    assert len(passages) == 2 and passages[0].metadata["chunk_id"].startswith("starter/")

    report = drafting_chain(drafter).invoke(study)
    assert isinstance(report, Report) and report.study_id == study
