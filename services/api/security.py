"""Who may call the service: API keys checked against the store, scopes, per-key rate limits.

A request carries its key as ``Authorization: Bearer <secret>`` or ``X-API-Key: <secret>``. No key or
an unknown or revoked one: 401; a key without the endpoint's scope: 403; too many requests: 429 with
``Retry-After``. None of these answers carries any case data.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from rag.store import Store
from rag.store.access import KeyInfo, verify_key

__all__ = ["ApiError", "KeyCache", "RateLimiter", "secret_of"]


class ApiError(Exception):
    """An HTTP error with a reason for the caller (never a stack trace or another patient's data)."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}


def secret_of(authorization: str | None, x_api_key: str | None) -> str | None:
    if x_api_key:
        return x_api_key.strip()
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


@dataclass
class KeyCache:
    """Verified keys for a few seconds, so a burst of requests reads the key table once; a revoked key is
    refused within ``ttl`` seconds. At most ``max_entries`` answers are kept (expired ones go first, then
    the oldest), so a stream of made-up keys cannot grow it without bound."""

    store: Store
    ttl: float = 2.0
    max_entries: int = 1024
    _seen: dict[str, tuple[float, KeyInfo | None]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, secret: str | None, scope: str) -> KeyInfo:
        if not secret:
            raise ApiError(401, "an API key is required (Authorization: Bearer <key> or X-API-Key)")
        now = time.monotonic()
        with self._lock:
            hit = self._seen.get(secret)
        if hit is None or now - hit[0] > self.ttl:
            info = verify_key(self.store, secret)
            with self._lock:
                self._seen.pop(secret, None)
                self._seen[secret] = (now, info)
                if len(self._seen) > self.max_entries:
                    self._evict(now)
        else:
            info = hit[1]
        if info is None:
            raise ApiError(401, "the API key is unknown or revoked")
        if scope not in info.scopes:
            raise ApiError(403, f"the key {info.name!r} lacks the {scope!r} scope this request needs")
        return info

    def _evict(self, now: float) -> None:
        """Drop expired answers, then the oldest, until the cache is within ``max_entries`` (lock held)."""
        for secret in [k for k, (at, _) in self._seen.items() if now - at > self.ttl]:
            del self._seen[secret]
        while len(self._seen) > self.max_entries:
            del self._seen[next(iter(self._seen))]

    def __len__(self) -> int:
        return len(self._seen)


@dataclass
class RateLimiter:
    """A token bucket per key: ``rate`` requests a second on average, bursts up to ``burst``."""

    rate: float = 50.0
    burst: float = 100.0
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                wait = (1.0 - tokens) / self.rate
                self._buckets[key] = (tokens, now)
                raise ApiError(429, f"rate limit of {self.rate:g} requests/s reached", {"Retry-After": f"{wait:.1f}"})
            self._buckets[key] = (tokens - 1.0, now)
