"""Weights and thresholds are fitted only on the patients a later draft or evaluation may rely on."""

from __future__ import annotations

import pytest

from rag.core.errors import RetrievalError
from rag.retrieve.calibrate import calibrate
from rag.retrieve.retriever import CaseRetriever
from rag.store import open_store
from tests.retrieve.conftest import EmbeddedArchive


def test_excluded_patients_are_neither_searched_nor_fitted_on(embedded_archive: EmbeddedArchive) -> None:
    store = open_store(embedded_archive.config.db_url)
    try:
        retriever = CaseRetriever(store, embeddings_folder=embedded_archive.embeddings, index_kind="flat")
        catalog = retriever.catalog
        patient = {s: info.patient_pseudonym for s, info in catalog.studies.items()}
        held = sorted(set(patient.values()))[:1]
        done = calibrate(retriever, exclude_patients=held, val_fraction=0.4, k=3, steps=3)
        fitted_on = {patient[s] for s in done.train_studies + done.val_studies}
        assert fitted_on and not fitted_on & set(held)
        assert done.excluded_studies == sum(1 for p in patient.values() if p in held)
        assert done.thresholds is not None and done.thresholds.criterion == "accuracy"
        with pytest.raises(RetrievalError, match="no study is left to fit on"):
            calibrate(retriever, exclude_patients=set(patient.values()), steps=3)
    finally:
        store.close()
