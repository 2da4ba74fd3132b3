"""API keys and the audit log of the HTTP service, kept in the case store.

A key is a random secret shown once at creation; the store keeps its SHA-256 (a high-entropy secret
needs no slow hash), a short prefix to recognise it, its scopes and when it was revoked. Every request
that reads or changes a case appends an :class:`~rag.store.models.AuditEntry`; the database refuses
UPDATE and DELETE on that table (migration 0003), so the service cannot edit what it recorded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from rag.core.errors import RagError
from rag.store.db import Store
from rag.store.models import ApiKey, AuditEntry

__all__ = ["SCOPES", "AccessError", "KeyInfo", "audit", "create_key", "list_keys", "revoke_key", "verify_key"]

SCOPES = ("read", "upload", "admin")
"""read: cases, similar cases, drafts, comparisons; upload: ingest studies; admin: the audit log."""

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class AccessError(RagError):
    """A key that cannot be created or revoked as asked (bad name or scope, duplicate, unknown)."""


@dataclass(frozen=True)
class KeyInfo:
    """A key as listed: never its secret."""

    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: dt.datetime | None
    revoked_at: dt.datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(row.id, row.name, row.prefix, tuple(row.scopes.split()), row.created_at, row.revoked_at)


def create_key(store: Store, name: str, scopes: Iterable[str]) -> tuple[KeyInfo, str]:
    """A new key: its listing and the secret (shown once, stored only hashed).

    Raises:
        AccessError: a name that is not 1-64 letters, digits, ``_.-``; an unknown scope; a name in use.
    """
    wanted = sorted(set(scopes))
    if not _NAME.match(name):
        raise AccessError(f"key name {name!r}: use 1-64 letters, digits, '_', '.' or '-'")
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown or not wanted:
        raise AccessError(f"scopes {unknown or 'none'}: give one or more of {', '.join(SCOPES)}")
    secret = "rag_" + secrets.token_urlsafe(32)
    with store.session() as s:
        if s.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
            raise AccessError(f"a key named {name!r} exists; revoke it or choose another name")
        row = ApiKey(name=name, prefix=secret[:12], secret_sha256=_digest(secret), scopes=" ".join(wanted))
        s.add(row)
        s.flush()
        s.refresh(row)
        return _info(row), secret


def verify_key(store: Store, secret: str) -> KeyInfo | None:
    """The active key with this secret, or None (unknown or revoked)."""
    with store.session() as s:
        row = s.scalar(select(ApiKey).where(ApiKey.secret_sha256 == _digest(secret)))
        return _info(row) if row is not None and row.revoked_at is None else None


def revoke_key(store: Store, name: str) -> KeyInfo:
    """Revoke the key named ``name`` (its rows stay, for the audit log's sake).

    Raises:
        AccessError: no such key.
    """
    with store.session() as s:
        row = s.scalar(select(ApiKey).where(ApiKey.name == name))
        if row is None:
            raise AccessError(f"no key named {name!r}; `rag keys list` shows them")
        if row.revoked_at is None:
            row.revoked_at = dt.datetime.now(dt.UTC)
            s.flush()
        return _info(row)


def list_keys(store: Store) -> list[KeyInfo]:
    with store.session() as s:
        return [_info(r) for r in s.scalars(select(ApiKey).order_by(ApiKey.id))]


def audit(store: Store, key_name: str, action: str, study_ids: Iterable[int | None], status: int = 200) -> None:
    """Append one audit row per study read (one row with no study when ``study_ids`` is empty)."""
    ids = list(study_ids) or [None]
    with store.session() as s:
        s.add_all(AuditEntry(key_name=key_name, study_id=sid, action=action, status=status) for sid in ids)
