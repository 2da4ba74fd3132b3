"""Keyword side of the knowledge base: word tokens and a BM25 index (the ``bm25s`` package).

Tokens are lower-cased runs of letters and digits; a decimal number stays one token (``"2.6"``,
``"4.0"``), so thresholds can be searched for; English stop words are dropped. The same function
tokenises chunks and queries, and its version is recorded in the manifest.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["BM25_FILES", "BM25_PARAMS", "TOKENIZER", "bm25_ranking", "build_bm25", "load_bm25", "tokenize"]

TOKENIZER = "words-v1"
"""Version of :func:`tokenize`; a knowledge base indexed with another version must be rebuilt."""

BM25_PARAMS: dict[str, Any] = {"method": "lucene", "k1": 1.5, "b": 0.75}
"""BM25 variant and parameters (recorded in the manifest)."""

BM25_FILES: dict[str, str] = {
    "data_name": "bm25.data.npy",
    "indices_name": "bm25.indices.npy",
    "indptr_name": "bm25.indptr.npy",
    "vocab_name": "bm25.vocab.json",
    "params_name": "bm25.params.json",
}
"""File names of the saved BM25 index inside the knowledge-base folder."""

_WORD = re.compile(r"[^\W_]+(?:\.\d+)?")


def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN  # type: ignore[import-untyped]

    return frozenset(STOPWORDS_EN)


_STOPWORDS: frozenset[str] | None = None


def tokenize(text: str) -> list[str]:
    """Lower-cased word and number tokens of ``text``, English stop words removed."""
    global _STOPWORDS
    if _STOPWORDS is None:
        _STOPWORDS = _stopwords()
    return [t for t in _WORD.findall(text.lower()) if t not in _STOPWORDS]


def _bm25_class() -> Any:
    from bm25s import BM25  # type: ignore[import-untyped]

    return BM25


def build_bm25(texts: list[str]) -> Any:
    """A ``bm25s.BM25`` index over ``texts`` (at least one), document ``i`` = ``texts[i]``."""
    if not texts:
        raise ValueError("a BM25 index needs at least one text")
    index = _bm25_class()(**BM25_PARAMS)
    index.index([tokenize(t) for t in texts], show_progress=False)
    return index


def save_bm25(index: Any, folder: Path) -> list[str]:
    """Write the index into ``folder``. Returns: the names of the files written."""
    index.save(str(folder), show_progress=False, **BM25_FILES)
    return list(BM25_FILES.values())


def load_bm25(folder: Path) -> Any:
    """Read an index written by :func:`save_bm25`."""
    return _bm25_class().load(str(folder), show_progress=False, **BM25_FILES)


def bm25_ranking(index: Any, query: str, n: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """The best ``n`` documents for ``query`` that contain at least one of its tokens.

    Returns:
        (m,) int64 document rows, best first, and their (m,) float32 BM25 scores; ``m <= n``, and
        ``m = 0`` when no query token occurs in the index. Equal scores keep document order.
    """
    import numpy as np

    known = [t for t in dict.fromkeys(tokenize(query)) if t in index.vocab_dict]
    if not known or n < 1:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    scores = np.asarray(index.get_scores(known), dtype=np.float32)
    order = np.argsort(-scores, kind="stable")[:n]
    order = order[scores[order] > 0]
    return order.astype(np.int64), scores[order]
