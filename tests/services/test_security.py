"""The API key cache: answers reused for a few seconds, revocations seen after them, memory bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.store import open_store
from rag.store.access import create_key, revoke_key
from services.api.security import ApiError, KeyCache


def test_the_key_cache_sees_a_revocation_after_its_ttl_and_stays_bounded(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'rag.db'}")
    try:
        _, secret = create_key(store, "alice", ["read"])
        cache = KeyCache(store, ttl=0.0, max_entries=8)
        assert cache.check(secret, "read").name == "alice"
        with pytest.raises(ApiError) as scope:
            cache.check(secret, "upload")
        assert scope.value.status == 403
        revoke_key(store, "alice")
        with pytest.raises(ApiError) as revoked:
            cache.check(secret, "read")
        assert revoked.value.status == 401
        for i in range(100):  # a flood of made-up keys
            with pytest.raises(ApiError):
                cache.check(f"made-up-{i}", "read")
        assert len(cache) <= 8
    finally:
        store.close()
