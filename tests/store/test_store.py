from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from rag.core.errors import StoreError
from rag.store import Clip, Patient, Report, ReportSection, Series, Study, open_store


def test_migrations_create_every_table_and_are_idempotent(db_url: str) -> None:
    store = open_store(db_url)
    expected = {"patients", "studies", "series", "clips", "images", "reports", "report_sections", "measurements"}
    assert expected <= set(store.tables())
    store.close()
    open_store(db_url).close()  # a second upgrade is a no-op


def test_round_trip_and_cascade(db_url: str) -> None:
    store = open_store(db_url)
    with store.session() as s:
        p = Patient(pseudonym="Pabc")
        st = Study(patient=p, uid_hash="2.25.1", study_date=dt.date(2020, 1, 2), modality="US")
        se = Series(study=st, uid_hash="2.25.2", modality="US")
        s.add(
            Clip(
                series=se,
                instance_uid_hash="2.25.3",
                content_sha256="0" * 64,
                source_sha256="2" * 64,
                source_format="dicom",
                source_frames=10,
                source_height=430,
                source_width=600,
                fps=13.2,
                timing_source="FrameTime",
                photometric="PALETTE COLOR",
                is_grayscale=False,
                mask_source="pixels",
                frames=16,
                looped_frames=6,
                size=224,
                path="clips/2./x.npz",
                header={"00100010": {"vr": "PN"}},
            )
        )
        r = Report(study=st, kind="echo", content_sha256="1" * 64, text="LV normal.")
        r.sections = [ReportSection(name="Left Ventricle", text="LV normal.", position=0)]
        s.add(r)
    with store.session() as s:
        clip = s.scalars(select(Clip)).one()
        assert clip.series.study.patient.pseudonym == "Pabc"
        assert clip.header == {"00100010": {"vr": "PN"}}
        assert s.scalars(select(Study)).one().study_date == dt.date(2020, 1, 2)
        s.delete(s.scalars(select(Patient)).one())
    with store.session() as s:
        assert s.scalars(select(Clip)).all() == []
        assert s.scalars(select(ReportSection)).all() == []
    store.close()


def test_failed_transaction_leaves_nothing(db_url: str) -> None:
    store = open_store(db_url)
    with store.session() as s:
        s.add(Patient(pseudonym="Pdup"))
    with pytest.raises(IntegrityError), store.session() as s:
        s.add(Study(patient=Patient(pseudonym="Pnew"), uid_hash="2.25.9"))
        s.flush()
        s.add(Patient(pseudonym="Pdup"))  # unique violation: the whole item must roll back
        s.flush()
    with store.session() as s:
        assert [p.pseudonym for p in s.scalars(select(Patient))] == ["Pdup"]
        assert s.scalars(select(Study)).all() == []
    store.close()


def test_bad_url_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="RAG_DATABASE_URL"):
        open_store("nosuchdialect://x/y")


def test_head_revision_is_alembics_head() -> None:
    from importlib import resources

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from rag.store.db import head_revision

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("rag.store") / "migrations"))
    assert head_revision() == ScriptDirectory.from_config(cfg).get_current_head()


def test_a_store_at_head_opens_without_migrating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rag.store.db as db

    url = f"sqlite:///{tmp_path / 'rag.sqlite3'}"
    db.open_store(url).close()  # creates and migrates

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("alembic ran on a store already at head")

    import alembic.command

    monkeypatch.setattr(alembic.command, "upgrade", refuse)
    store = db.open_store(url)
    assert "studies" in store.tables()
    store.close()
