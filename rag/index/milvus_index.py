"""Milvus vector indexes through ``pymilvus.MilvusClient``: Milvus Lite (a local ``.db`` file) or a server.

A collection holds an INT64 primary key ``id`` (the store row ID) and a FLOAT_VECTOR ``vector``, indexed
with metric IP (FLAT, HNSW, IVF_FLAT or IVF_PQ). Filters become a
boolean expression (``id in [...]`` / ``id not in [...]``) that Milvus applies inside the search. The
data lives in Milvus: :meth:`MilvusIndex.save` only flushes; the manifest beside it records the URI and
collection. pymilvus is imported when an index is opened, never when this module is imported.

Install with ``pip install 'echo-rag[milvus]'`` (pymilvus and milvus-lite).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rag.core.errors import IndexInputError, VectorIndexError
from rag.core.validation import format_validation_error
from rag.index._arrays import check_ids, check_k, check_vectors, empty_results, tidy
from rag.index.faiss_index import default_pq_m
from rag.index.protocol import SearchFilter

if TYPE_CHECKING:
    from rag.index.manifest import IndexManifest

log = logging.getLogger(__name__)

INDEX_TYPES = {"flat": "FLAT", "hnsw": "HNSW", "ivf_flat": "IVF_FLAT", "ivf_pq": "IVF_PQ"}
MAX_K = 16_384
"""Milvus's largest ``limit`` per search."""
_SERVER_SCHEMES = ("http://", "https://", "tcp://", "grpc://", "unix:")
_QUERY_CHUNK = 4096


class MilvusParams(BaseModel):
    """Index and search parameters of a :class:`MilvusIndex` (each applies to the kinds it names)."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    hnsw_m: int = Field(32, ge=4, le=256, description="hnsw: graph neighbours per node (M).")
    ef_construction: int = Field(200, ge=8, le=4096, description="hnsw: candidate list size while building.")
    ef_search: int = Field(128, ge=1, le=65536, description="hnsw: candidate list size while searching (>= k).")
    nlist: int = Field(1024, ge=1, le=65536, description="ivf_*: inverted lists.")
    nprobe: int = Field(32, ge=1, le=65536, description="ivf_*: lists scanned per query.")
    pq_m: int | None = Field(None, ge=1, description="ivf_pq: sub-quantizers (divides dim); default dim/8.")
    batch_size: int = Field(5000, ge=1, le=100_000, description="Rows per insert request.")


_RELEVANT = {
    "flat": (),
    "hnsw": ("hnsw_m", "ef_construction", "ef_search"),
    "ivf_flat": ("nlist", "nprobe"),
    "ivf_pq": ("nlist", "nprobe", "pq_m"),
}


def is_local_uri(uri: str) -> bool:
    """True for a Milvus Lite file path, False for a server address."""
    return not uri.startswith(_SERVER_SCHEMES)


def collection_name(index_name: str) -> str:
    """A valid Milvus collection name for an index name (letters, digits and underscores)."""
    return "rag_" + re.sub(r"[^A-Za-z0-9_]", "_", index_name)


class MilvusIndex:
    """A Milvus collection behind the :class:`~rag.index.protocol.VectorIndex` interface.

    Args:
        uri: a local ``.db`` file (Milvus Lite, embedded; created when missing) or ``http://host:19530``.
        collection: collection name (letters, digits, underscores).
        dim: vector dimension.
        kind: ``flat``, ``hnsw``, ``ivf_flat`` or ``ivf_pq`` (mapped to Milvus index types).
        token: server token (``user:password`` or an API key); never stored.
        create: create the collection when it does not exist (else that is an error).
        params: see :class:`MilvusParams`.
    """

    def __init__(
        self,
        uri: str,
        collection: str,
        dim: int,
        kind: str = "flat",
        *,
        token: str | None = None,
        create: bool = True,
        **params: Any,
    ) -> None:
        if kind not in INDEX_TYPES:
            raise VectorIndexError(f"Unknown index kind '{kind}'. Available: {list(INDEX_TYPES)}")
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise IndexInputError(f"dim must be a positive integer, got {dim!r}")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,254}", collection):
            raise VectorIndexError(
                f"Invalid Milvus collection name '{collection}': use letters, digits and underscores, "
                f"e.g. '{collection_name(collection)}'"
            )
        try:
            self._params = MilvusParams(**params)
        except ValidationError as e:
            allowed = sorted(MilvusParams.model_fields)
            raise VectorIndexError(
                f"Invalid Milvus index parameters ({format_validation_error(e)}). Allowed: {allowed}"
            ) from e
        self._dim = dim
        self._kind = kind
        self._collection = collection
        if is_local_uri(uri):
            path = Path(uri).expanduser().resolve()
            if path.suffix != ".db":
                raise VectorIndexError(f"A Milvus Lite URI must be a file ending in .db, got '{uri}'")
            path.parent.mkdir(parents=True, exist_ok=True)
            self._uri = str(path)
        else:
            self._uri = uri
        self._client = _connect(self._uri, token)
        if self._client.has_collection(collection):
            self._check_schema()
        elif create:
            self._create()
        else:
            raise VectorIndexError(
                f"Milvus collection '{collection}' does not exist at {self._uri}; build it with "
                "`rag index build --backend milvus ...`"
            )

    @classmethod
    def from_manifest(cls, folder: Path, manifest: IndexManifest, *, token: str | None = None) -> MilvusIndex:
        """Open the collection a saved manifest names (a relative Lite path is relative to ``folder``)."""
        params = dict(manifest.build_params)
        try:
            uri = str(params.pop("uri"))
            collection = str(params.pop("collection"))
        except KeyError as e:
            raise VectorIndexError(
                f"The manifest in {folder} lacks build_params.{e.args[0]}; "
                "rebuild it with `rag index build --backend milvus`"
            ) from e
        if is_local_uri(uri) and not Path(uri).is_absolute():
            uri = str(Path(folder) / uri)
        return cls(uri, collection, manifest.dim, manifest.kind, token=token, create=False, **params)

    # Properties ------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self._dim

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def backend(self) -> str:
        return "milvus"

    @property
    def uri(self) -> str:
        return self._uri

    @property
    def collection(self) -> str:
        return self._collection

    @property
    def params(self) -> dict[str, Any]:
        """URI, collection and the parameters that apply to this kind."""
        dumped = self._params.model_dump()
        out: dict[str, Any] = {"uri": self._uri, "collection": self._collection}
        out.update({key: dumped[key] for key in _RELEVANT[self._kind]})
        return out

    def __len__(self) -> int:
        rows = self._client.query(self._collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def __repr__(self) -> str:
        return f"MilvusIndex(uri={self._uri!r}, collection={self._collection!r}, kind={self._kind!r}, dim={self._dim})"

    def close(self) -> None:
        """Close the client connection."""
        self._client.close()

    def drop(self) -> None:
        """Delete the collection and everything in it."""
        self._client.drop_collection(self._collection)

    # Changes ---------------------------------------------------------------------------------
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Insert new items (IDs must not be in the collection yet; Milvus itself would keep both rows)."""
        ids64 = check_ids(ids)
        x = check_vectors(vectors, self._dim, rows=ids64.size)
        if ids64.size == 0:
            return
        dup = self._existing(ids64) if len(self) else ids64[:0]
        if dup.size:
            raise IndexInputError(
                f"IDs already in the collection: {dup[:5].tolist()}{' ...' if dup.size > 5 else ''} "
                f"({dup.size} in all); use update() to replace their vectors"
            )
        self._write("insert", ids64, x)

    def update(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Replace the vectors of IDs already in the collection (an upsert of existing rows)."""
        ids64 = check_ids(ids)
        x = check_vectors(vectors, self._dim, rows=ids64.size)
        if ids64.size == 0:
            return
        known = self._existing(ids64)
        if known.size != ids64.size:
            miss = np.setdiff1d(ids64, known)
            raise IndexInputError(
                f"IDs not in the collection: {miss[:5].tolist()}{' ...' if miss.size > 5 else ''} "
                f"({miss.size} in all); use add() for new items"
            )
        self._write("upsert", ids64, x)

    def remove(self, ids: np.ndarray) -> int:
        """Delete items; IDs not in the collection are ignored. Returns how many were removed."""
        arr = np.asarray(ids)
        if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            raise IndexInputError(f"ids must be a 1-D array of int64 IDs, got dtype {arr.dtype} and shape {arr.shape}")
        present = self._existing(np.unique(arr.astype(np.int64, copy=False)))
        for start in range(0, present.size, _QUERY_CHUNK):
            self._client.delete(self._collection, ids=present[start : start + _QUERY_CHUNK].tolist())
        return int(present.size)

    # Search ----------------------------------------------------------------------------------
    def search(
        self, queries: np.ndarray, k: int, *, filter: SearchFilter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best items per query; the filter is a Milvus boolean expression on ``id``.

        Returns:
            scores (q, k) float32 inner products, best first; ids (q, k) int64, padded with ``-inf`` / ``-1``.
        """
        k = check_k(k)
        if k > MAX_K:
            raise IndexInputError(f"k={k} exceeds Milvus's largest limit {MAX_K}; ask for fewer results")
        q = check_vectors(queries, self._dim, name="queries")
        if filter is not None and not isinstance(filter, SearchFilter):
            raise IndexInputError(f"filter must be a SearchFilter, got {type(filter).__name__}")
        scores, ids = empty_results(q.shape[0], k)
        expr = _expression(filter)
        if q.shape[0] == 0 or expr is None:
            return scores, ids
        hits = self._client.search(
            self._collection,
            data=q.tolist(),
            filter=expr,
            limit=k,
            output_fields=["id"],
            search_params={"metric_type": "IP", "params": self._search_params(k)},
            anns_field="vector",
        )
        for row, row_hits in enumerate(hits):
            ranked = sorted(((float(h["distance"]), int(h["id"])) for h in row_hits), key=lambda t: -t[0])[:k]
            for col, (score, hit_id) in enumerate(ranked):
                scores[row, col] = score
                ids[row, col] = hit_id
        return tidy(scores, ids)

    def get_vectors(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors of ``ids`` (n,) int64. Returns: (n, dim) float32, in the order of ``ids``."""
        ids64 = np.asarray(ids, dtype=np.int64).reshape(-1)
        rows = self._client.get(self._collection, ids=ids64.tolist(), output_fields=["id", "vector"])
        found = {int(r["id"]): r["vector"] for r in rows}
        missing = [int(i) for i in ids64 if int(i) not in found]
        if missing:
            raise IndexInputError(f"IDs not in the collection: {missing[:5]}")
        return np.asarray([found[int(i)] for i in ids64], dtype=np.float32).reshape(-1, self._dim)

    def ids(self) -> np.ndarray:
        """Returns: (n,) int64, the IDs in the collection, sorted."""
        out: list[int] = []
        iterator = self._client.query_iterator(self._collection, batch_size=_QUERY_CHUNK, output_fields=["id"])
        while True:
            batch = iterator.next()
            if not batch:
                break
            out.extend(int(r["id"]) for r in batch)
        iterator.close()
        return np.sort(np.asarray(out, dtype=np.int64))

    def save(self, folder: Path) -> None:
        """Flush the collection; the data stays in Milvus (the caller writes the manifest into ``folder``)."""
        Path(folder).mkdir(parents=True, exist_ok=True)
        self._client.flush(self._collection)

    # Internals -------------------------------------------------------------------------------
    def _create(self) -> None:
        from pymilvus import DataType

        schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self._dim)
        index_params = self._client.prepare_index_params()
        p = self._params
        build: dict[str, Any] = {}
        if self._kind == "hnsw":
            build = {"M": p.hnsw_m, "efConstruction": p.ef_construction}
        elif self._kind in ("ivf_flat", "ivf_pq"):
            build = {"nlist": p.nlist}
            if self._kind == "ivf_pq":
                build.update(m=p.pq_m or default_pq_m(self._dim), nbits=8)
        index_params.add_index(field_name="vector", index_type=INDEX_TYPES[self._kind], metric_type="IP", params=build)
        from pymilvus.exceptions import MilvusException

        try:
            self._client.create_collection(
                self._collection, schema=schema, index_params=index_params, consistency_level="Strong"
            )
        except MilvusException as e:
            raise VectorIndexError(
                f"Milvus at {self._uri} refused a {INDEX_TYPES[self._kind]} collection '{self._collection}' ({e}); "
                f"try another kind of {list(INDEX_TYPES)}"
            ) from e

    def _check_schema(self) -> None:
        desc = self._client.describe_collection(self._collection)
        fields = {f["name"]: f for f in desc.get("fields", [])}
        vec = fields.get("vector")
        if "id" not in fields or vec is None:
            raise VectorIndexError(
                f"Milvus collection '{self._collection}' lacks the fields 'id' and 'vector' (has {sorted(fields)}); "
                "it was not made by this project, pick another name"
            )
        dim = int(vec.get("params", {}).get("dim", -1))
        if dim != self._dim:
            raise VectorIndexError(
                f"Milvus collection '{self._collection}' holds {dim}-d vectors, not {self._dim}-d; "
                "rebuild it with `rag index build --backend milvus` or pick another name"
            )

    def _search_params(self, k: int) -> dict[str, Any]:
        if self._kind == "hnsw":
            return {"ef": max(self._params.ef_search, k)}
        if self._kind in ("ivf_flat", "ivf_pq"):
            return {"nprobe": self._params.nprobe}
        return {}

    def _existing(self, ids: np.ndarray) -> np.ndarray:
        """The sorted subset of ``ids`` present in the collection."""
        found: list[int] = []
        for start in range(0, ids.size, _QUERY_CHUNK):
            chunk = ids[start : start + _QUERY_CHUNK]
            rows = self._client.query(self._collection, filter=_in_list(chunk), output_fields=["id"])
            found.extend(int(r["id"]) for r in rows)
        return np.unique(np.asarray(found, dtype=np.int64))

    def _write(self, op: str, ids: np.ndarray, x: np.ndarray) -> None:
        call = getattr(self._client, op)
        step = self._params.batch_size
        for start in range(0, ids.size, step):
            rows = [
                {"id": int(i), "vector": v}
                for i, v in zip(ids[start : start + step].tolist(), x[start : start + step].tolist(), strict=True)
            ]
            call(self._collection, rows)


def _connect(uri: str, token: str | None) -> Any:
    try:
        from pymilvus import MilvusClient
        from pymilvus.exceptions import MilvusException
    except ImportError as e:
        raise VectorIndexError(
            "The Milvus back-end needs pymilvus (and milvus-lite for local files): pip install 'echo-rag[milvus]'"
        ) from e
    try:
        return MilvusClient(uri=uri, token=token or "")
    except (MilvusException, OSError) as e:
        raise VectorIndexError(
            f"Cannot connect to Milvus at {uri} ({e}); check the URI and that the server runs"
        ) from e


def _in_list(ids: np.ndarray) -> str:
    return f"id in [{','.join(str(int(i)) for i in ids)}]"


def _expression(filter: SearchFilter | None) -> str | None:
    """The Milvus filter expression ('' = no filter), or None when nothing can match."""
    if filter is None:
        return ""
    parts = []
    if filter.allowed_ids is not None:
        if filter.allowed_ids.size == 0:
            return None
        parts.append(_in_list(filter.allowed_ids))
    if filter.excluded_ids is not None and filter.excluded_ids.size:
        parts.append(f"id not in [{','.join(str(int(i)) for i in filter.excluded_ids)}]")
    return " and ".join(parts)
