"""One formatter for pydantic validation errors: ``path: message`` per problem, joined by ``; ``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = ["error_location", "format_validation_error"]


def error_location(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a dotted path (``ingest.frames``), ``<root>`` when empty."""
    return ".".join(str(p) for p in loc) or "<root>"


def format_validation_error(error: ValidationError, *, with_input: bool = False) -> str:
    """Every problem of ``error`` as ``path: message`` (plus ``(got <input>)`` with ``with_input``), ``; ``-joined."""
    parts = []
    for e in error.errors():
        text = f"{error_location(tuple(e['loc']))}: {e['msg']}"
        if with_input and "input" in e:
            text += f" (got {e['input']!r})"
        parts.append(text)
    return "; ".join(parts)
