from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from rag.core.stats import auroc
from rag.eval.retrieval import TRUTH_GRADES, evaluate_archive, truth_by_study
from rag.retrieve.retriever import CaseRetriever
from rag.store import open_store
from rag.vocab.findings import PHENOTYPES
from tests.retrieve.conftest import KEY, EmbeddedArchive


def test_auroc_by_hand_and_against_pair_counting() -> None:
    assert auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert auroc([0.5, 0.5, 0.5], [0, 1, 1]) == pytest.approx(0.5)  # ties count one half
    assert auroc([1, 2, 3], [0, 0, 1]) == 1.0 and auroc([1, 2, 3], [1, 0, 0]) == 0.0
    assert math.isnan(auroc([0.2, 0.3], [1, 1]))
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, size=80) / 5.0  # many ties
    labels = rng.random(80) < 0.4
    pos, neg = scores[labels], scores[~labels]
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert auroc(scores, labels) == pytest.approx(pairs / (len(pos) * len(neg)))


def test_truth_table_covers_known_phenotypes() -> None:
    assert set(TRUTH_GRADES) <= set(PHENOTYPES)
    assert all(PHENOTYPES[n].kind == "finding" for n in TRUTH_GRADES)


def test_evaluation_on_an_ingested_archive(embedded_archive: EmbeddedArchive) -> None:
    store = open_store(embedded_archive.config.db_url)
    try:
        retriever = CaseRetriever(store, embeddings_folder=embedded_archive.embeddings, index_kind="flat")
        truth = truth_by_study(retriever, embedded_archive.archive, KEY.encode())
        assert len(truth) == len(retriever.catalog.studies)
        report = evaluate_archive(
            retriever,
            embedded_archive.archive,
            pseudonym_key=KEY.encode(),
            test_fraction=0.34,
            val_fraction=0.33,
            k=5,
            fit_options={"steps": 5},
        )
    finally:
        store.close()
    assert [t.weights for t in report.tables] == ["uniform", "default", "learned"]
    assert report.n_test >= 1 and report.n_train >= 1
    assert all(t.n_mae["lvef"] == report.n_test for t in report.tables)  # every test study gets an LVEF
    assert all(0 <= t.lvef_mae < 60 for t in report.tables)
    text = report.text()
    assert "lvef MAE (%" in text and "mean AUROC >=1" in text and "baseline LVEF MAE" in text
    assert report.to_dict()["tables"][2]["weights"] == "learned"


def test_evaluation_command_writes_json_markdown_plots_and_the_draft_table(
    embedded_archive: EmbeddedArchive, tmp_path: Path
) -> None:
    import json

    import yaml
    from typer.testing import CliRunner

    from rag.cli import app

    config = tmp_path / "rag.yaml"
    config.write_text(yaml.safe_dump({"home": str(embedded_archive.config.home), "pseudonym_key": KEY}))
    out = tmp_path / "eval"
    args = ["eval", "retrieval", "-e", str(embedded_archive.embeddings), "--archive", str(embedded_archive.archive)]
    args += ["--k", "5", "--steps", "3", "--test-fraction", "0.34", "--val-fraction", "0.33", "--drafts"]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "-c", str(config)])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "evaluation.json").read_text())
    assert {"tables", "drafts", "n_test"} <= set(data)
    assert set(data["drafts"]) == {"top-1 copy", "vote-agreeing", "all normal", "prior"}
    assert data["drafts"]["vote-agreeing"]["consistent"]["mean"] == 1.0  # no sentence contradicts its vote
    assert "all normal" in result.output and "no contradiction" in result.output
    assert "fitted on validation patients" in result.output  # the thresholds the drafts used, and where from
    markdown = (out / "evaluation.md").read_text()
    assert "| metric |" in markdown and "roc-learned.svg" in markdown
    svg = (out / "roc-learned.svg").read_text()
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert (out / "lvef-learned.svg").read_text().count("<circle") == data["tables"][2]["n_mae"]["lvef"]


def test_no_test_patient_is_in_the_reference_or_the_fitted_table(embedded_archive: EmbeddedArchive) -> None:
    store = open_store(embedded_archive.config.db_url)
    try:
        retriever = CaseRetriever(store, embeddings_folder=embedded_archive.embeddings, index_kind="flat")
        catalog = retriever.catalog
        held = sorted({catalog.studies[s].patient_pseudonym for s in catalog.studies})[:1]
        report = evaluate_archive(
            retriever,
            embedded_archive.archive,
            pseudonym_key=KEY.encode(),
            val_fraction=0.5,
            k=5,
            fit_options={"steps": 3},
            test_patients=held,
        )
        patient = {s: catalog.studies[s].patient_pseudonym for s in catalog.studies}
    finally:
        store.close()
    tested = {patient[s] for s in report.test_studies}
    assert tested == set(held)
    assert not tested & {patient[s] for s in report.reference_studies}
    assert report.fit is not None and report.n_test == len(report.test_studies)
    # the table's check and the draft thresholds are fitted on validation patients: apart from the test
    validated = {patient[s] for s in report.validation_studies}
    assert validated and not tested & validated
    assert set(report.validation_studies) <= set(report.reference_studies)
