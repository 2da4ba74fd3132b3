"""Hybrid search over a knowledge base: MiniLM cosine similarity and BM25, fused by reciprocal rank.

Each retriever ranks its own candidates — the dense side the ``N`` chunks nearest to the query's
MiniLM embedding, the keyword side up to ``N`` chunks sharing at least one query token, best BM25
score first — with ``N = max(50, 4k)`` unless set. Reciprocal rank fusion (Cormack et al., SIGIR 2009)
then scores every candidate by ``sum(1 / (c + rank))`` over the lists it appears in (ranks from 1,
``c = 60``): a chunk found by both retrievers outranks one found by either alone at a similar rank,
and neither side's raw score scale matters. A rare keyword ("TAPSE") that the dense side places
poorly is still found through BM25, and a paraphrase with no shared word through the dense side.

::

    from rag.kb import KnowledgeBase

    kb = KnowledgeBase.open("ws/kb")
    for hit in kb.search("severe aortic stenosis mean gradient", k=3):
        print(hit.chunk_id, f"{hit.score:.4f}", hit.dense_rank, hit.bm25_rank, hit.heading)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rag.core.lookup import did_you_mean
from rag.kb.chunk import KBChunk
from rag.kb.embed import TextEmbedder
from rag.kb.errors import KBError, KBQueryError, UnknownChunkError
from rag.kb.store import KBManifest, check_embedder, default_kb_dir, load_state

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["DEFAULT_MIN_CANDIDATES", "DEFAULT_RRF_K", "KBHit", "KnowledgeBase", "reciprocal_rank_fusion"]

DEFAULT_RRF_K = 60
"""The constant ``c`` of reciprocal rank fusion."""

DEFAULT_MIN_CANDIDATES = 50
QUERY_CACHE = 4096
"""Query embeddings kept for repeated queries."""
"""Each retriever ranks at least this many candidates (and at least ``4k``)."""

H = TypeVar("H", bound=Hashable)


@dataclass(frozen=True)
class KBHit:
    """One passage found by :meth:`KnowledgeBase.search`.

    ``score`` is the fused reciprocal-rank score (higher is better). ``dense_rank`` and ``bm25_rank``
    are the passage's ranks (from 1) among each retriever's candidates, None when it was not among
    them; ``dense_score`` is the cosine similarity to the query, ``bm25_score`` the BM25 score (None
    likewise).
    """

    chunk_id: str
    source: str
    heading: str
    text: str
    score: float
    dense_rank: int | None
    bm25_rank: int | None
    dense_score: float | None = None
    bm25_score: float | None = None


def reciprocal_rank_fusion(rankings: Sequence[Sequence[H]], *, k: int = DEFAULT_RRF_K) -> list[tuple[H, float]]:
    """Fuse ranked lists: ``score(d) = sum over lists containing d of 1 / (k + rank)``, ranks from 1.

    Args:
        rankings: ranked lists of item IDs, best first; an ID may be absent from some lists.
        k: the fusion constant (larger flattens the advantage of top ranks).

    Returns:
        (item, score) pairs, best first; equal scores are ordered by the item's best rank in any list,
        then by first appearance (list order, then rank).

    Raises:
        ValueError: ``k`` is negative or an item appears twice in one list.
    """
    if k < 0:
        raise ValueError(f"the fusion constant k must be >= 0, got {k}")
    scores: dict[H, float] = {}
    best: dict[H, int] = {}
    first: dict[H, int] = {}
    for ranking in rankings:
        if len(set(ranking)) != len(ranking):
            raise ValueError("an item appears more than once in one ranked list")
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
            best[item] = min(best.get(item, rank), rank)
            first.setdefault(item, len(first))
    return sorted(scores.items(), key=lambda kv: (-kv[1], best[kv[0]], first[kv[0]]))


class KnowledgeBase:
    """A knowledge base opened for search (see :meth:`open`).

    Args:
        folder: where it was read from.
        manifest: its manifest.
        chunks: the chunks, row ``i`` of ``dense`` and of the BM25 index being ``chunks[i]``.
        dense: (n, dim) float32, L2-normalised.
        bm25: the ``bm25s.BM25`` index (None when there are no chunks).
        embedder: embeds queries; its weights must be those the chunks were embedded with.
        rrf_k: reciprocal rank fusion constant.
        candidates: how many candidates each retriever ranks (default ``max(50, 4k)``).
    """

    def __init__(
        self,
        folder: Path,
        manifest: KBManifest,
        chunks: list[KBChunk],
        dense: NDArray[np.float32],
        bm25: Any,
        embedder: TextEmbedder,
        *,
        rrf_k: int = DEFAULT_RRF_K,
        candidates: int | None = None,
    ) -> None:
        if rrf_k < 0:
            raise KBError(f"rrf_k must be >= 0, got {rrf_k}")
        if candidates is not None and candidates < 1:
            raise KBError(f"candidates must be >= 1 (or None for max({DEFAULT_MIN_CANDIDATES}, 4k)), got {candidates}")
        if dense.shape != (len(chunks), manifest.dim):
            raise KBError(f"dense vectors of shape {dense.shape} do not fit {len(chunks)} chunks of dim {manifest.dim}")
        if chunks and bm25 is None:
            raise KBError(f"the knowledge base at {folder} has {len(chunks)} chunks but no BM25 index")
        self.folder = folder
        self.manifest = manifest
        self._chunks = chunks
        self._by_id = {c.chunk_id: i for i, c in enumerate(chunks)}
        self._dense = dense
        self._bm25 = bm25
        self._query_cache: OrderedDict[str, NDArray[np.float32]] = OrderedDict()
        self.embedder = embedder
        self.rrf_k = rrf_k
        self.candidates = candidates

    @classmethod
    def open(
        cls,
        folder: Path | str | None = None,
        *,
        embedder: TextEmbedder | None = None,
        rrf_k: int = DEFAULT_RRF_K,
        candidates: int | None = None,
        verify: bool = True,
    ) -> KnowledgeBase:
        """Open the knowledge base in ``folder`` (default ``<workspace>/kb``).

        The embedding model is checked (by the sha256 of its weights) but loaded only by the first search.

        Args:
            embedder: default :class:`~rag.kb.embed.MiniLMEmbedder` on CPU.
            verify: check the data files against the sha256 recorded in the manifest.

        Raises:
            KBError: no knowledge base there, or its files are missing, corrupt or inconsistent.
            KBModelMismatchError: it was embedded with other weights than ``embedder``'s; rebuild it.
        """
        from rag.kb.embed import MiniLMEmbedder
        from rag.kb.keyword import load_bm25

        path = Path(folder) if folder is not None else default_kb_dir()
        state = load_state(path, verify=verify)
        embedder = embedder or MiniLMEmbedder()
        check_embedder(state.manifest, embedder, path)
        bm25 = load_bm25(path) if state.chunks else None
        return cls(path, state.manifest, state.chunks, state.dense, bm25, embedder, rrf_k=rrf_k, candidates=candidates)

    def __len__(self) -> int:
        return len(self._chunks)

    def __contains__(self, chunk_id: object) -> bool:
        return chunk_id in self._by_id

    def chunks(self) -> list[KBChunk]:
        """Every chunk, in row order."""
        return list(self._chunks)

    def get(self, chunk_id: str) -> KBChunk:
        """The chunk with this ID.

        Raises:
            UnknownChunkError: no chunk has that ID (the message suggests near IDs).
        """
        row = self._by_id.get(chunk_id)
        if row is None:
            hint = did_you_mean(chunk_id, self._by_id, n=3)
            raise UnknownChunkError(f"No chunk '{chunk_id}' in the knowledge base at {self.folder}.{hint}")
        return self._chunks[row]

    def dense_ranking(self, query: str, n: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """The ``n`` chunks nearest to the query's embedding.

        Returns:
            (m,) int64 rows best first and their (m,) float32 cosine similarities, ``m = min(n, len(self))``.
        """
        import numpy as np

        m = min(n, len(self._chunks))
        if m < 1:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        q = self.query_vectors([query])[0]
        sims = self._dense @ q
        top = np.argpartition(-sims, m - 1)[:m] if m < sims.size else np.arange(sims.size)
        top = top[np.lexsort((top, -sims[top]))]
        return top.astype(np.int64), sims[top].astype(np.float32)

    def bm25_ranking(self, query: str, n: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Up to ``n`` chunks sharing a token with the query, best BM25 score first (rows, scores)."""
        import numpy as np

        from rag.kb.keyword import bm25_ranking

        if self._bm25 is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        return bm25_ranking(self._bm25, query, n)

    def query_vectors(self, queries: Sequence[str]) -> NDArray[np.float32]:
        """Embeddings of ``queries``: the ones not seen lately are encoded together in one batch.

        Drafting asks about the same sections in the same words study after study, so the last
        ``QUERY_CACHE`` query embeddings are kept.
        """
        import numpy as np

        todo = list(dict.fromkeys(q for q in queries if q not in self._query_cache))
        if todo:
            for q, v in zip(todo, self.embedder.encode(todo), strict=True):
                self._query_cache[q] = v
            while len(self._query_cache) > QUERY_CACHE:
                self._query_cache.popitem(last=False)
        for q in queries:
            self._query_cache.move_to_end(q)
        return np.stack([self._query_cache[q] for q in queries]) if queries else np.zeros((0, 384), np.float32)

    def search_many(self, queries: Sequence[str], k: int = 5) -> list[list[KBHit]]:
        """:meth:`search` for several queries, their embeddings computed in one batch."""
        self.query_vectors([q for q in queries if isinstance(q, str) and q.strip()])
        return [self.search(q, k) for q in queries]

    def search(self, query: str, k: int = 5) -> list[KBHit]:
        """The ``k`` best passages for ``query`` by hybrid dense + BM25 retrieval (fewer when the KB is small).

        Raises:
            KBQueryError: ``query`` is not a non-empty string, or ``k < 1``.
        """
        if not isinstance(query, str) or not query.strip():
            raise KBQueryError(f"The query must be a non-empty string, got {query!r}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise KBQueryError(f"k must be a positive integer, got {k!r}")
        if not self._chunks:
            return []
        n = self.candidates or max(DEFAULT_MIN_CANDIDATES, 4 * k)
        dense_rows, dense_scores = self.dense_ranking(query, n)
        bm25_rows, bm25_scores = self.bm25_ranking(query, n)
        dense_at = {
            int(r): (rank, float(s)) for rank, (r, s) in enumerate(zip(dense_rows, dense_scores, strict=True), 1)
        }
        bm25_at = {int(r): (rank, float(s)) for rank, (r, s) in enumerate(zip(bm25_rows, bm25_scores, strict=True), 1)}
        fused = reciprocal_rank_fusion([list(dense_at), list(bm25_at)], k=self.rrf_k)
        hits: list[KBHit] = []
        for row, score in fused[:k]:
            chunk = self._chunks[row]
            d = dense_at.get(row)
            b = bm25_at.get(row)
            hits.append(
                KBHit(
                    chunk.chunk_id,
                    chunk.source,
                    chunk.heading,
                    chunk.text,
                    score,
                    d[0] if d else None,
                    b[0] if b else None,
                    d[1] if d else None,
                    b[1] if b else None,
                )
            )
        return hits
