"""Opening the case store: engine, sessions and migrations.

SQLite in the workspace by default; any SQLAlchemy URL (e.g. ``postgresql+psycopg://...``) otherwise.
The schema is created and upgraded by the Alembic migrations shipped inside the package, so the store
works from any working directory.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from rag.core.errors import StoreError

log = logging.getLogger(__name__)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str) -> Engine:
    """Create an engine for ``url``; for SQLite, create the folder and enable foreign keys and WAL."""
    try:
        if url.startswith("sqlite"):
            db_path = url.split(":///", 1)[-1]
            if db_path and db_path != ":memory:":
                Path(db_path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ImportError, ValueError) as e:
        raise StoreError(
            f"Cannot open the case store at '{_redact(url)}': {e}. Check RAG_DATABASE_URL "
            "(e.g. 'postgresql+psycopg://user@127.0.0.1/rag'; install the 'postgres' extra for PostgreSQL)."
        ) from e
    return engine


def _redact(url: str) -> str:
    """The URL with any password hidden (for messages and logs)."""
    head, sep, tail = url.partition("://")
    if "@" in tail and ":" in tail.split("@", 1)[0]:
        user = tail.split("@", 1)[0].split(":", 1)[0]
        return f"{head}{sep}{user}:***@{tail.split('@', 1)[1]}"
    return url


_REVISION_LINE = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(?:[\"']([^\"']*)[\"']|None)", re.M)


def head_revision() -> str:
    """The newest packaged migration, read from the migration files' ``revision`` lines (Alembic not imported)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    folder = resources.files("rag.store") / "migrations" / "versions"
    for entry in folder.iterdir():
        if not entry.name.endswith(".py"):
            continue
        for key, value in _REVISION_LINE.findall(entry.read_text(encoding="utf-8")):
            if value:
                (revisions if key == "revision" else parents).add(value)
    heads = sorted(revisions - parents)
    if len(heads) != 1:
        raise StoreError(f"the packaged migrations have {len(heads)} heads {heads}; expected one")
    return heads[0]


def _current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        return None


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema to ``revision`` with the packaged Alembic migrations.

    A store already at the newest migration is recognised from its ``alembic_version`` row without
    loading Alembic (opening a store is on the drafting path).
    """
    if revision == "head" and _current_revision(engine) == head_revision():
        return
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    script_dir = resources.files("rag.store") / "migrations"
    cfg.set_main_option("script_location", str(script_dir))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except SQLAlchemyError as e:
        raise StoreError(f"Migrating the case store at '{_redact(str(engine.url))}' failed: {e}") from e


@dataclass
class Store:
    """An open case store: an engine plus a session factory."""

    engine: Engine
    sessions: sessionmaker[Session]

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any exception."""
        with self.sessions() as s, s.begin():
            yield s

    def tables(self) -> list[str]:
        return sorted(inspect(self.engine).get_table_names())

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str, *, upgrade: bool = True) -> Store:
    """Open (and by default create or upgrade) the case store at ``url``."""
    engine = make_engine(url)
    if upgrade:
        migrate(engine)
    log.debug("case store open (%s)", engine.url.get_backend_name())
    return Store(engine=engine, sessions=sessionmaker(engine, expire_on_commit=False))
