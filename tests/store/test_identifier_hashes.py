"""The identifier_hashes table: migration 0002, one row per (patient, token hash), gone with the patient."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from rag.store import Patient, make_engine, migrate, open_store
from rag.store.models import IdentifierHash


def test_an_existing_store_is_upgraded_and_keeps_its_rows(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine, "0001")
    assert "identifier_hashes" not in inspect(engine).get_table_names()
    engine.dispose()
    store = open_store(db_url, upgrade=False)
    with store.session() as s:
        s.add(Patient(pseudonym="Pold"))
    store.close()

    store = open_store(db_url)  # upgrades to head
    assert "identifier_hashes" in store.tables()
    with store.session() as s:
        patient = s.scalars(select(Patient)).one()
        s.add(IdentifierHash(patient_id=patient.id, token_hash="a" * 64))
    store.close()


def test_hashes_are_unique_per_patient_and_go_with_the_patient(db_url: str) -> None:
    store = open_store(db_url)
    with store.session() as s:
        one, two = Patient(pseudonym="P1"), Patient(pseudonym="P2")
        one.identifier_hashes = [IdentifierHash(token_hash="a" * 64), IdentifierHash(token_hash="b" * 64)]
        two.identifier_hashes = [IdentifierHash(token_hash="a" * 64)]  # the same token for another patient
        s.add_all([one, two])
    with pytest.raises(IntegrityError), store.session() as s:
        p1 = s.scalars(select(Patient).where(Patient.pseudonym == "P1")).one()
        s.add(IdentifierHash(patient_id=p1.id, token_hash="a" * 64))
        s.flush()
    with store.session() as s:
        s.delete(s.scalars(select(Patient).where(Patient.pseudonym == "P1")).one())
    with store.session() as s:
        rows = s.execute(select(Patient.pseudonym, IdentifierHash.token_hash).join(IdentifierHash)).all()
        assert rows == [("P2", "a" * 64)]
    store.close()
