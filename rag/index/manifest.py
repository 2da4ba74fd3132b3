"""The manifest of a saved index (indexes/<name>/manifest.json), shared by every back-end."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from rag.core.manifest import VectorManifest

__all__ = ["IndexManifest"]


class IndexManifest(VectorManifest):
    """What an index holds and how it was built (``indexes/<name>/manifest.json``)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", description="Folder name under indexes/.")
    backend: Literal["faiss", "milvus"]
    kind: Literal["flat", "hnsw", "ivf_flat", "ivf_pq"]
    count: int = Field(ge=0, description="Vectors in the index when it was saved.")
    build_params: dict[str, Any] = Field(default_factory=dict, description="Back-end build and search parameters.")
    source: Literal["clips", "images", "sections"] = Field(description="Which embeddings: clips, images or sections.")
    embeddings_dir: str | None = Field(None, description="The `rag embed` folder the vectors came from.")
