"""Parameters, names and filter expressions of :class:`rag.index.milvus_index.MilvusIndex` (no pymilvus here)."""

from __future__ import annotations

import json
import re
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from rag.index.protocol import SearchFilter

__all__ = [
    "COMMON",
    "INDEX_TYPES",
    "MAX_K",
    "RELEVANT",
    "ConsistencyLevel",
    "MilvusParams",
    "collection_name",
    "expression",
    "in_list",
    "is_local_uri",
]

INDEX_TYPES = {"flat": "FLAT", "hnsw": "HNSW", "ivf_flat": "IVF_FLAT", "ivf_pq": "IVF_PQ"}
MAX_K = 16_384
"""Milvus's largest ``limit`` per search."""
_SERVER_SCHEMES = ("http://", "https://", "tcp://", "grpc://", "unix:")
ConsistencyLevel = Literal["Strong", "Bounded", "Session", "Eventually"]


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
    consistency_level: ConsistencyLevel | None = Field(
        None,
        description="Consistency of searches and reads: Strong, Bounded, Session or Eventually; "
        "default Strong for Milvus Lite, Bounded for a server.",
    )
    num_partitions: int = Field(
        16, ge=1, le=1024, description="Partitions the partition key 'view' is hashed into (set at creation)."
    )


COMMON = ("consistency_level", "num_partitions")
RELEVANT = {
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


def in_list(ids: np.ndarray) -> str:
    return f"id in [{','.join(str(int(i)) for i in ids)}]"


def expression(filter: SearchFilter | None) -> str | None:
    """The Milvus filter expression ('' = no filter), or None when nothing can match."""
    if filter is None:
        return ""
    parts = []
    for field, names in (("view", filter.views), ("modality", filter.modalities)):
        if names is not None:
            if not names:
                return None
            parts.append(f"{field} in {json.dumps(list(names))}")
    if filter.allowed_ids is not None:
        if filter.allowed_ids.size == 0:
            return None
        parts.append(in_list(filter.allowed_ids))
    if filter.excluded_ids is not None and filter.excluded_ids.size:
        parts.append(f"id not in [{','.join(str(int(i)) for i in filter.excluded_ids)}]")
    return " and ".join(parts)
