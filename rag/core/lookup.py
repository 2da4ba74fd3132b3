"""One way to look an option up: an unknown name gets "did you mean" and the list of what exists.

::

    kind = look_up_option(kind, KINDS, what="index kind", error=VectorIndexError)
    # VectorIndexError: Unknown index kind 'hnws'. Did you mean 'hnsw'? Available: ['flat', 'hnsw', ...]
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import TypeVar

from rag.core.errors import RagError

__all__ = ["did_you_mean", "look_up_option"]

_K = TypeVar("_K", bound=str)


def did_you_mean(name: str, allowed: Iterable[str], *, n: int = 1, cutoff: float = 0.6) -> str:
    """`` Did you mean 'x'?`` (with a leading space) for the closest of ``allowed``, or ``""`` when none is close.

    With ``n`` > 1 the close names are listed: `` Did you mean 'x' or 'y'?``.
    """
    close = difflib.get_close_matches(name, list(allowed), n=n, cutoff=cutoff)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"


def look_up_option(
    name: str,
    allowed: Iterable[_K],
    *,
    what: str,
    error: type[RagError] = RagError,
    fix: str = "",
) -> _K:
    """``name`` itself when it is one of ``allowed``.

    Raises:
        error: ``name`` is not allowed; the message names it, the closest allowed names, every allowed
            name and ``fix`` (what to do), e.g. ``Unknown encoder 'echo-vitb61'. Did you mean
            'echo-vitb16'? Available: [...]``.
    """
    options = list(allowed)
    for option in options:
        if option == name:
            return option
    message = f"Unknown {what} {name!r}.{did_you_mean(name, options)} Available: {sorted(options)}"
    raise error(f"{message}. {fix}" if fix else message)
