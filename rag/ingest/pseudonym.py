"""Keyed pseudonyms: patient pseudonyms, replacement UIDs, date offsets and identifier-token hashes.

Everything here is an HMAC-SHA256 of the input under the workspace key, with a domain label per use,
so the values are stable across runs under one key and unrelated under another. The key never
appears in logs, reprs or error messages.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from datetime import date, timedelta
from typing import Final

from rag.core.errors import ConfigError, DeidentificationError

__all__ = ["DEFAULT_OFFSET_RANGE", "KEY_ENV", "MIN_KEY_BYTES", "Pseudonymizer", "normalize_token"]

KEY_ENV: Final = "RAG_PSEUDONYM_KEY"
MIN_KEY_BYTES: Final = 8
DEFAULT_OFFSET_RANGE: Final = (-365, -30)
"""Default range of the per-patient date shift, in days (both ends included; never 0)."""


def normalize_token(token: str) -> str:
    """The form an identifying token is hashed in: NFKC-normalised, case-folded, stripped, ’ as '."""
    return unicodedata.normalize("NFKC", token).casefold().strip().replace("\u2019", "'")


class Pseudonymizer:
    """Keyed (HMAC-SHA256) pseudonyms, UIDs and date offsets.

    Everything is deterministic under one key: the same patient ID gives the same pseudonym and date
    offset in every run, and the same UID the same replacement, so studies ingested at different
    times still link up. A different key gives unrelated values. Keep the key: losing it means new
    pseudonyms for everyone; leaking it lets anyone holding a patient ID find that patient's data.

    Args:
        key: the secret, at least 8 bytes; use a random one (e.g. ``secrets.token_hex(32).encode()``):
            with a guessable key, anyone holding a patient ID can recompute the pseudonym.
        offset_range: (low, high) days of the per-patient date shift, both included. The range may
            not contain 0, so that no patient keeps true dates.
    """

    __slots__ = ("_key", "_offset_range")

    def __init__(self, key: bytes, *, offset_range: tuple[int, int] = DEFAULT_OFFSET_RANGE) -> None:
        if not isinstance(key, bytes | bytearray):
            raise TypeError("key must be bytes; use Pseudonymizer.from_settings() to pass a string")
        if len(key) < MIN_KEY_BYTES:
            raise DeidentificationError(
                f"The pseudonymisation key is {len(key)} bytes long; use at least {MIN_KEY_BYTES} (better 32 "
                f"random) bytes in {KEY_ENV}, e.g. the output of: "
                "python -c 'import secrets; print(secrets.token_hex(32))'"
            )
        low, high = offset_range
        if low > high or low <= 0 <= high:
            raise ConfigError(
                f"offset_range={offset_range!r} is invalid: it needs low <= high and must not contain 0 "
                f"(a zero shift keeps true dates); e.g. {DEFAULT_OFFSET_RANGE!r}"
            )
        self._key = bytes(key)
        self._offset_range = (low, high)

    @classmethod
    def from_settings(cls, key: str | None, *, offset_range: tuple[int, int] = DEFAULT_OFFSET_RANGE) -> Pseudonymizer:
        """Build from a configured key string (encoded as UTF-8).

        Raises:
            DeidentificationError: ``key`` is missing or empty. Whether to fall back to a generated key
                is the caller's decision, never made here.
        """
        if key is None or not key.strip():
            raise DeidentificationError(
                f"No pseudonymisation key: set the {KEY_ENV} environment variable (or pass key=...) to a "
                f"secret of at least {MIN_KEY_BYTES} bytes (32 random ones are better), and keep it: "
                "pseudonyms only stay stable under the same key"
            )
        return cls(key.encode("utf-8"), offset_range=offset_range)

    def __repr__(self) -> str:
        return f"Pseudonymizer(key=<hidden>, offset_range={getattr(self, '_offset_range', None)!r})"

    @property
    def offset_range(self) -> tuple[int, int]:
        """(low, high) days of the date shift."""
        return self._offset_range

    @property
    def key_fingerprint(self) -> str:
        """A short keyed digest that tells keys apart without revealing them (to record in a store)."""
        return self._digest(b"key-fingerprint")[:6].hex()

    def _digest(self, domain: bytes, *parts: str) -> bytes:
        msg = bytearray(domain)
        for part in parts:
            data = part.encode("utf-8")
            msg += len(data).to_bytes(4, "big") + data
        return hmac.new(self._key, bytes(msg), hashlib.sha256).digest()

    def patient_pseudonym(self, patient_id: str, issuer: str = "", *, fallback: str | None = None) -> str:
        """The patient's pseudonym: ``"P"`` and 16 hex digits.

        The issuer takes part in the hash, so the same ID from two issuers names two patients (and
        a patient whose issuer is sometimes missing gets two pseudonyms: fill the issuer
        consistently or leave it out consistently).

        When ``patient_id`` is empty, the pseudonym is derived from ``fallback`` instead, a key that
        the caller chooses to stand for the unknown patient (e.g. the Study Instance UID or the
        source folder): every instance sharing that fallback then shares one pseudonym, stable
        across runs, and never collides with a pseudonym made from a real ID.

        Raises:
            DeidentificationError: the patient ID and the fallback are both empty.
        """
        pid = patient_id.strip()
        if pid:
            digest = self._digest(b"patient", issuer.strip(), pid)
        elif fallback is not None and fallback.strip():
            digest = self._digest(b"patient-fallback", fallback.strip())
        else:
            raise DeidentificationError(
                "The patient ID is empty and no fallback was given; pass fallback=... (for instance the "
                "Study Instance UID) so that the instance still gets a stable pseudonym"
            )
        return "P" + digest[:8].hex()

    def uid(self, original_uid: str) -> str:
        """A UID under the ``2.25`` root derived from the keyed hash of ``original_uid``.

        The number after ``2.25.`` is a 128-bit name-based UUID (version 8), so the result is at
        most 44 characters, has no leading zeros and is the same for the same input and key.

        Raises:
            DeidentificationError: ``original_uid`` is empty.
        """
        value = original_uid.strip().strip("\x00").strip()
        if not value:
            raise DeidentificationError("Cannot derive a UID from an empty value; pass the original, non-empty UID")
        raw = bytearray(self._digest(b"uid", value)[:16])
        raw[6] = (raw[6] & 0x0F) | 0x80  # UUID version 8 (custom)
        raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
        return f"2.25.{int.from_bytes(raw, 'big')}"

    def date_offset_days(self, pseudonym: str) -> int:
        """The patient's date shift in days, within `offset_range` and never 0."""
        low, high = self._offset_range
        n = int.from_bytes(self._digest(b"date-offset", pseudonym)[:8], "big")
        return low + n % (high - low + 1)

    def shift_date(self, d: date, pseudonym: str) -> date:
        """``d`` moved by the patient's offset.

        Raises:
            DeidentificationError: the shifted date falls outside the calendar (year 1 to 9999).
        """
        try:
            return d + timedelta(days=self.date_offset_days(pseudonym))
        except OverflowError as e:
            raise DeidentificationError("A date cannot be shifted: it is at the edge of the calendar") from e

    def token_hash(self, token: str) -> str:
        """The keyed hash (64 hex digits) of an identifying token, e.g. a name part or a patient ID.

        The token is compared in `normalize_token` form, so case and Unicode compatibility forms do
        not matter. Without the key, a stored hash cannot be tested against a guessed name.
        """
        return self._digest(b"identifier-token", normalize_token(token)).hex()
