"""Milvus vector indexes through ``pymilvus.MilvusClient``: Milvus Lite (a local ``.db`` file) or a server.

A collection holds an INT64 primary key ``id`` (the store row ID), a FLOAT_VECTOR ``vector`` indexed with
metric IP (FLAT, HNSW, IVF_FLAT or IVF_PQ), and two VARCHAR attributes (:mod:`rag.index.attributes`):
``view`` (a coarse view, ``""`` for rows without one) and ``modality`` (``echo_video``, ``still_image``,
``report_section``). ``view`` is the partition key: searches restricted to some views are what the
attributes are for, and Milvus then scans only the partitions those views hash to. ``modality`` is not part
of the key, because every index holds one kind of embeddings (one modality): a key on it, or on
``"{modality}:{view}"``, would split nothing more. Filters become one boolean expression
(``view in [...] and modality in [...] and id in [...] and id not in [...]``) applied inside the search.

Consistency (:class:`MilvusParams` ``consistency_level``) is that of searches and reads of vectors and
attributes. By default it is ``Strong`` on Milvus Lite (one process writes and then reads; Lite is
consistent anyway) and ``Bounded`` on a server (many readers do not wait for the newest writes; they see
them within the server's staleness bound, a few seconds). The index's own checks before a write (which IDs
exist), its counts and its listing of IDs always read ``Strong``, so a build never miscounts.

The data lives in Milvus: :meth:`MilvusIndex.save` only flushes; the manifest beside it records the URI,
collection and parameters. pymilvus is imported when an index is opened, never when this module is imported.

Install with ``pip install 'echo-rag[milvus]'`` (pymilvus and milvus-lite).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError

from rag.core.errors import IndexInputError, VectorIndexError
from rag.core.validation import format_validation_error
from rag.index._arrays import check_ids, check_k, check_vectors, empty_results, tidy
from rag.index.attributes import ATTRIBUTES, MAX_LENGTH, check_attributes
from rag.index.faiss_index import default_pq_m
from rag.index.milvus_params import (
    COMMON,
    INDEX_TYPES,
    MAX_K,
    RELEVANT,
    ConsistencyLevel,
    MilvusParams,
    collection_name,
    expression,
    in_list,
    is_local_uri,
)
from rag.index.protocol import SearchFilter

__all__ = ["INDEX_TYPES", "MAX_K", "ConsistencyLevel", "MilvusIndex", "MilvusParams", "collection_name", "is_local_uri"]

if TYPE_CHECKING:
    from rag.index.manifest import IndexManifest

log = logging.getLogger(__name__)

Attributes = Mapping[str, Any]
"""Per-row attributes: ``{"view": (n,) str, "modality": (n,) str}`` or a subset."""

_QUERY_CHUNK = 4096
_CHECKS = "Strong"
"""Consistency of the index's own reads before writes, counts and ID listings."""


class MilvusIndex:
    """A Milvus collection behind the :class:`~rag.index.protocol.VectorIndex` interface.

    Rows carry the attributes ``view`` (the partition key) and ``modality``, given to :meth:`add` /
    :meth:`update` as ``attributes=`` and read back with :meth:`get_attributes`; a :class:`SearchFilter`
    with ``views`` / ``modalities`` is applied inside the search (see the module docstring).

    Args:
        uri: a local ``.db`` file (Milvus Lite, embedded; created when missing) or ``http://host:19530``.
        collection: collection name (letters, digits, underscores).
        dim: vector dimension.
        kind: ``flat``, ``hnsw``, ``ivf_flat`` or ``ivf_pq`` (mapped to Milvus index types).
        token: server token (``user:password`` or an API key); never stored.
        create: create the collection when it does not exist (else that is an error).
        params: see :class:`MilvusParams` (``consistency_level``, ``num_partitions``, index parameters).
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
        self._has_attributes = True
        self._consistency: str = self._params.consistency_level or ("Strong" if is_local_uri(uri) else "Bounded")
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
    def consistency_level(self) -> str:
        """The consistency level of searches and reads (``Strong``, ``Bounded``, ``Session``, ``Eventually``)."""
        return self._consistency

    @property
    def has_attributes(self) -> bool:
        """Whether the collection stores ``view`` and ``modality`` (collections made before they existed do not)."""
        return self._has_attributes

    @property
    def params(self) -> dict[str, Any]:
        """URI, collection, consistency level, partitions and the parameters that apply to this kind."""
        dumped = self._params.model_dump() | {"consistency_level": self._consistency}
        out: dict[str, Any] = {"uri": self._uri, "collection": self._collection}
        out.update({key: dumped[key] for key in (*COMMON, *RELEVANT[self._kind])})
        return out

    def __len__(self) -> int:
        rows = self._client.query(self._collection, filter="", output_fields=["count(*)"], consistency_level=_CHECKS)
        return int(rows[0]["count(*)"])

    def __repr__(self) -> str:
        return (
            f"MilvusIndex(uri={self._uri!r}, collection={self._collection!r}, kind={self._kind!r}, dim={self._dim}, "
            f"consistency_level={self._consistency!r})"
        )

    def close(self) -> None:
        """Close the client connection."""
        self._client.close()

    def drop(self) -> None:
        """Delete the collection and everything in it."""
        self._client.drop_collection(self._collection)

    # Changes ---------------------------------------------------------------------------------
    def add(self, ids: np.ndarray, vectors: np.ndarray, *, attributes: Attributes | None = None) -> None:
        """Insert new items (IDs must not be in the collection yet; Milvus itself would keep both rows).

        Args:
            ids: (n,) int64; vectors: (n, dim) float32 (see :meth:`VectorIndex.add`).
            attributes: ``{"view": (n,) str, "modality": (n,) str}`` or a subset (see
                :mod:`rag.index.attributes`); what is not given is stored as ``""``. Checked before anything
                is written.
        """
        ids64 = check_ids(ids)
        x = check_vectors(vectors, self._dim, rows=ids64.size)
        attrs = self._checked(attributes, ids64.size)
        if ids64.size == 0:
            return
        dup = self._existing(ids64) if len(self) else ids64[:0]
        if dup.size:
            raise IndexInputError(
                f"IDs already in the collection: {dup[:5].tolist()}{' ...' if dup.size > 5 else ''} "
                f"({dup.size} in all); use update() to replace their vectors"
            )
        if attrs is not None:
            attrs = {key: attrs.get(key, [""] * ids64.size) for key in ATTRIBUTES}
        self._write("insert", ids64, x, attrs)

    def update(self, ids: np.ndarray, vectors: np.ndarray, *, attributes: Attributes | None = None) -> None:
        """Replace the vectors of IDs already in the collection (an upsert of existing rows).

        Args:
            attributes: as in :meth:`add`; attributes not given keep their stored values.
        """
        ids64 = check_ids(ids)
        x = check_vectors(vectors, self._dim, rows=ids64.size)
        attrs = self._checked(attributes, ids64.size)
        if ids64.size == 0:
            return
        known = self._existing(ids64)
        if known.size != ids64.size:
            miss = np.setdiff1d(ids64, known)
            raise IndexInputError(
                f"IDs not in the collection: {miss[:5].tolist()}{' ...' if miss.size > 5 else ''} "
                f"({miss.size} in all); use add() for new items"
            )
        if self._has_attributes:
            attrs = attrs or {}
            kept = [key for key in ATTRIBUTES if key not in attrs]
            stored = self._stored(ids64, kept, _CHECKS) if kept else {}
            attrs = {key: attrs[key] if key in attrs else stored[key].tolist() for key in ATTRIBUTES}
        self._write("upsert", ids64, x, attrs)

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
        """The ``k`` best items per query; the filter becomes a Milvus boolean expression on ``view``, ``modality``
        and ``id``, applied inside the search at this index's consistency level.

        Returns:
            scores (q, k) float32 inner products, best first; ids (q, k) int64, padded with ``-inf`` / ``-1``.
        """
        k = check_k(k)
        if k > MAX_K:
            raise IndexInputError(f"k={k} exceeds Milvus's largest limit {MAX_K}; ask for fewer results")
        q = check_vectors(queries, self._dim, name="queries")
        if filter is not None and not isinstance(filter, SearchFilter):
            raise IndexInputError(f"filter must be a SearchFilter, got {type(filter).__name__}")
        if filter is not None and filter.has_attributes and not self._has_attributes:
            asked = f"views={filter.views} / modalities={filter.modalities}"
            raise VectorIndexError(self._no_attributes(f"filter on {asked}"))
        scores, ids = empty_results(q.shape[0], k)
        expr = expression(filter)
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
            consistency_level=self._consistency,
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
        rows = self._client.get(
            self._collection, ids=ids64.tolist(), output_fields=["id", "vector"], consistency_level=self._consistency
        )
        found = {int(r["id"]): r["vector"] for r in rows}
        missing = [int(i) for i in ids64 if int(i) not in found]
        if missing:
            raise IndexInputError(f"IDs not in the collection: {missing[:5]}")
        return np.asarray([found[int(i)] for i in ids64], dtype=np.float32).reshape(-1, self._dim)

    def get_attributes(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        """Stored attributes of ``ids`` (n,) int64. Returns: ``{"view": (n,) str, "modality": (n,) str}``.

        Raises:
            IndexInputError: an ID not in the collection.
            VectorIndexError: the collection stores no attributes.
        """
        if not self._has_attributes:
            raise VectorIndexError(self._no_attributes("read attributes"))
        return self._stored(np.asarray(ids, dtype=np.int64).reshape(-1), list(ATTRIBUTES), self._consistency)

    def ids(self) -> np.ndarray:
        """Returns: (n,) int64, the IDs in the collection, sorted."""
        out: list[int] = []
        iterator = self._client.query_iterator(
            self._collection, batch_size=_QUERY_CHUNK, output_fields=["id"], consistency_level=_CHECKS
        )
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
        schema.add_field("view", DataType.VARCHAR, max_length=MAX_LENGTH, is_partition_key=True)
        schema.add_field("modality", DataType.VARCHAR, max_length=MAX_LENGTH)
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
                self._collection,
                schema=schema,
                index_params=index_params,
                consistency_level=self._consistency,
                num_partitions=self._params.num_partitions,
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
        present = [name for name in ATTRIBUTES if name in fields]
        if present and len(present) != len(ATTRIBUTES):
            raise VectorIndexError(
                f"Milvus collection '{self._collection}' has the attribute field(s) {present} but not all of "
                f"{list(ATTRIBUTES)}; it was not made by this project, pick another name"
            )
        self._has_attributes = bool(present)

    def _checked(self, attributes: Attributes | None, n: int) -> dict[str, list[str]] | None:
        """Validated attributes for ``n`` rows, or None when the collection stores none."""
        checked = check_attributes({} if attributes is None else attributes, n)
        if not self._has_attributes:
            if checked:
                raise VectorIndexError(self._no_attributes("store attributes"))
            return None
        return checked

    def _no_attributes(self, what: str) -> str:
        return (
            f"Milvus collection '{self._collection}' was made without the fields {list(ATTRIBUTES)}, so it cannot "
            f"{what}; rebuild it (`rag index build --backend milvus --force`, or `rag index migrate` from FAISS)"
        )

    def _stored(self, ids: np.ndarray, fields: list[str], level: str) -> dict[str, np.ndarray]:
        """The stored ``fields`` of ``ids``, each (n,) str in the order of ``ids``."""
        found: dict[int, dict[str, Any]] = {}
        for start in range(0, ids.size, _QUERY_CHUNK):
            chunk = ids[start : start + _QUERY_CHUNK]
            rows = self._client.query(
                self._collection, filter=in_list(chunk), output_fields=["id", *fields], consistency_level=level
            )
            found.update({int(r["id"]): r for r in rows})
        missing = [int(i) for i in ids if int(i) not in found]
        if missing:
            raise IndexInputError(f"IDs not in the collection: {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        return {f: np.asarray([str(found[int(i)][f]) for i in ids], dtype=str) for f in fields}

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
            rows = self._client.query(
                self._collection, filter=in_list(chunk), output_fields=["id"], consistency_level=_CHECKS
            )
            found.extend(int(r["id"]) for r in rows)
        return np.unique(np.asarray(found, dtype=np.int64))

    def _write(self, op: str, ids: np.ndarray, x: np.ndarray, attrs: dict[str, list[str]] | None) -> None:
        call = getattr(self._client, op)
        step = self._params.batch_size
        for start in range(0, ids.size, step):
            rows: list[dict[str, Any]] = [
                {"id": int(i), "vector": v}
                for i, v in zip(ids[start : start + step].tolist(), x[start : start + step].tolist(), strict=True)
            ]
            for key, values in (attrs or {}).items():
                for row, value in zip(rows, values[start : start + step], strict=True):
                    row[key] = value
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
