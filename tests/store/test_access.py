"""API keys and the audit log in the case store, on SQLite and (integration) PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from rag.store import open_store
from rag.store.access import AccessError, audit, create_key, list_keys, revoke_key, verify_key


def test_keys_are_stored_hashed_scoped_and_revocable(db_url: str) -> None:
    store = open_store(db_url)
    try:
        info, secret = create_key(store, "alice", ["upload", "read"])
        assert info.scopes == ("read", "upload") and secret.startswith(info.prefix)
        with store.session() as s:
            stored = s.execute(text("SELECT secret_sha256, scopes FROM api_keys")).one()
        assert secret not in stored[0] and len(stored[0]) == 64  # only the hash is kept
        assert verify_key(store, secret) == info and verify_key(store, secret + "x") is None
        with pytest.raises(AccessError, match="exists"):
            create_key(store, "alice", ["read"])
        with pytest.raises(AccessError, match="scopes"):
            create_key(store, "bob", ["root"])
        with pytest.raises(AccessError, match="key name"):
            create_key(store, "../bob", ["read"])
        revoked = revoke_key(store, "alice")
        assert revoked.revoked_at is not None and verify_key(store, secret) is None
        assert [k.name for k in list_keys(store)] == ["alice"] and not list_keys(store)[0].active
        with pytest.raises(AccessError, match="no key named"):
            revoke_key(store, "carol")
    finally:
        store.close()


def test_the_audit_log_is_append_only(db_url: str) -> None:
    store = open_store(db_url)
    try:
        audit(store, "alice", "read case", [7, 8])
        audit(store, "alice", "search", [])
        with store.session() as s:
            rows = s.execute(text("SELECT key_name, study_id, action FROM audit_log ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [
            ("alice", 7, "read case"),
            ("alice", 8, "read case"),
            ("alice", None, "search"),
        ]
        for statement in ("UPDATE audit_log SET key_name = 'mallory'", "DELETE FROM audit_log"):
            with pytest.raises(DBAPIError, match="append-only"), store.session() as s:
                s.execute(text(statement))
        with store.session() as s:
            assert s.execute(text("SELECT COUNT(*) FROM audit_log")).scalar() == 3
    finally:
        store.close()
