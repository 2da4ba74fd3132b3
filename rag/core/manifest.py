"""The one manifest model of everything written to disk from vectors: embeddings, indexes, the case
library and the knowledge base.

Each names the encoder and checkpoint the vectors come from, their dimension, metric and
normalisation, the encoder's preprocessing and when it was written; the kinds add their own fields
by subclassing :class:`VectorManifest`. Readers compare it with what is in use through
:func:`mismatch` and refuse a difference: vectors of another encoder are not comparable, and
searching them would return confident nonsense.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["VectorManifest", "mismatch"]


class VectorManifest(BaseModel):
    """What a folder of vectors holds and how they were made (``manifest.json``)."""

    model_config = ConfigDict(extra="forbid")

    encoder: str = Field(min_length=1, description="Encoder registry name that made the vectors.")
    checkpoint_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the encoder checkpoint.")
    dim: int = Field(ge=1)
    metric: Literal["inner_product"] = "inner_product"
    normalisation: Literal["l2"] = "l2"
    preprocessing: dict[str, Any] = Field(default_factory=dict, description="The encoder's input preprocessing.")
    created_at: datetime


def mismatch(
    manifest: VectorManifest,
    *,
    encoder: str | None = None,
    checkpoint_sha256: str | None = None,
    dim: int | None = None,
) -> str | None:
    """What differs between ``manifest`` and the encoder, checkpoint and dimension in use, or None.

    ``None`` arguments are not checked. The text names both values, e.g. ``"was built from checkpoint
    sha256 0123456789ab… but checkpoint fedcba987654… is in use"``.
    """
    if encoder is not None and manifest.encoder != encoder:
        return f"was built from encoder '{manifest.encoder}' but encoder '{encoder}' is in use"
    if checkpoint_sha256 is not None and manifest.checkpoint_sha256 != checkpoint_sha256:
        return (
            f"was built from checkpoint sha256 {manifest.checkpoint_sha256[:12]}… but checkpoint "
            f"{checkpoint_sha256[:12]}… is in use"
        )
    if dim is not None and manifest.dim != dim:
        return f"holds {manifest.dim}-d vectors but the encoder in use makes {dim}-d ones"
    return None
