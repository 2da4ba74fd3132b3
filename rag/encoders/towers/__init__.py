"""Tower architectures and what a builder gets: the spec being built and what it resolves.

Each architecture named in :mod:`rag.encoders.spec` has a builder here, imported only when an encoder
of that architecture is built (so the tiny tower never imports open_clip or torchvision). A builder
may adopt values that the weights dictate (an open_clip model's image size, context length,
mean/std): they go into the resolved spec, with a warning when the entry said otherwise.
"""

from __future__ import annotations

import importlib
import logging
import math
from dataclasses import dataclass, field
from typing import Any

from rag.encoders.spec import EncoderSpec, Preprocessing

logger = logging.getLogger(__name__)

VIDEO_BUILDERS: dict[str, str] = {
    "tiny-cnn-attnpool": "rag.encoders.towers.tiny:build_video",
    "grid-cnn": "rag.encoders.towers.grid:build_video",
    "mvit-v2-s": "rag.encoders.towers.mvit:build_video",
    "open-clip-frames": "rag.encoders.towers.openclip:build_video",
}
TEXT_BUILDERS: dict[str, str] = {
    "minilm": "rag.encoders.towers.minilm:build_text",
    "open-clip-text": "rag.encoders.towers.openclip:build_text",
}


@dataclass
class BuildContext:
    """The spec being built and the values its towers resolve.

    Attributes:
        spec: the spec as given (registry entry or checkpoint).
        preprocessing: the preprocessing, possibly updated by a tower (see :meth:`adopt`).
        embed_dim: the embedding size, possibly updated by a tower.
        video_kwargs / text_kwargs: tower keyword arguments as they go into the resolved spec.
        logit_scale: initial log inverse temperature (pretrained CLIP weights bring their own).
        shared: objects the video builder hands to the text builder (e.g. one open_clip model).
    """

    spec: EncoderSpec
    preprocessing: Preprocessing
    embed_dim: int
    video_kwargs: dict[str, Any]
    text_kwargs: dict[str, Any]
    logit_scale: float = math.log(1 / 0.07)
    shared: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, spec: EncoderSpec) -> BuildContext:
        """A fresh context for ``spec``."""
        return cls(
            spec=spec,
            preprocessing=spec.preprocessing,
            embed_dim=spec.embed_dim,
            video_kwargs=dict(spec.video.kwargs),
            text_kwargs=dict(spec.text.kwargs),
        )

    def adopt(self, reason: str, *, embed_dim: int | None = None, **values: Any) -> None:
        """Take values the weights dictate; warn about each that differs from the entry's.

        Args:
            reason: what dictates the values (named in the warning).
            embed_dim: the embedding size, if dictated.
            **values: preprocessing fields (``size``, ``mean``, ``std``, ``tokenizer``, ``max_length``).
        """
        if embed_dim is not None and embed_dim != self.embed_dim:
            logger.warning(
                "encoder %s: embed_dim %d replaced by %d (%s)", self.spec.name, self.embed_dim, embed_dim, reason
            )
            self.embed_dim = embed_dim
        current = self.preprocessing.model_dump()
        changed = {}
        for key, value in values.items():
            old = current[key]
            same = (
                all(math.isclose(a, b, rel_tol=1e-5) for a, b in zip(old, value, strict=True))
                if isinstance(old, tuple)
                else old == value
            )
            if not same:
                changed[key] = value
                if not (key == "tokenizer" and old == "open_clip"):
                    logger.warning(
                        "encoder %s: preprocessing.%s %r replaced by %r (%s)", self.spec.name, key, old, value, reason
                    )
        if changed:
            self.preprocessing = Preprocessing.model_validate({**current, **changed})

    def resolved_spec(self) -> EncoderSpec:
        """The spec with every resolved value: what the model carries and a checkpoint stores."""
        data = self.spec.model_dump(mode="json")
        data["video"]["kwargs"] = self.video_kwargs
        data["text"]["kwargs"] = self.text_kwargs
        data["embed_dim"] = self.embed_dim
        data["preprocessing"] = self.preprocessing.model_dump(mode="json")
        return EncoderSpec.model_validate(data)


def load_builder(table: dict[str, str], architecture: str) -> Any:
    """Import the builder function of ``architecture`` from ``table``."""
    module_name, func = table[architecture].split(":")
    return getattr(importlib.import_module(module_name), func)
