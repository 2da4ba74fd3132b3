"""The encoder interface that later stages code against; :class:`EchoEncoder` and test fakes satisfy it.

No torch import at runtime: tensor types appear in annotations only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from rag.encoders.spec import EncoderSpec

if TYPE_CHECKING:
    import torch


@runtime_checkable
class Encoder(Protocol):
    """Clips, stills and text into one L2-normalised space, plus view probabilities.

    Video inputs are (B, 3, T, H, W) float32 normalised with ``spec.preprocessing``
    (:func:`rag.encoders.batch_clips`); embeddings are (B, D) float32 with unit L2 norm.
    """

    spec: EncoderSpec

    @property
    def device(self) -> torch.device:
        """Where the model's parameters live."""
        ...

    def video_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, T, H, W) -> embeddings (B, D) L2-normalised, view logits (B, n_views)."""
        ...

    def encode_video(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, D) float32, L2-normalised."""
        ...

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) or (B, 3, 1, H, W) -> (B, D) float32, L2-normalised."""
        ...

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """B strings -> (B, D) float32, L2-normalised."""
        ...

    def view_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, n_views) float32, rows sum to 1, columns in ``spec.view_classes`` order."""
        ...
