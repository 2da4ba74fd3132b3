"""The encoder model: a video tower, a text tower, a view head and a CLIP temperature.

Importing this module imports torch; :mod:`rag.encoders` only loads it when an encoder is created.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rag.core.errors import EncoderInputError
from rag.encoders.spec import EncoderSpec

TextTokens = dict[str, Any]
"""Tokenizer output: tensors (moved to the model's device before the text tower runs) and plain values."""


@dataclass(frozen=True)
class ExternalWeights:
    """Frozen pretrained weights that a checkpoint leaves out and reloads from an installed package.

    ``prefix`` is relative to the tower (e.g. ``"backbone."``); the checkpoint records the package,
    its version and the sha256 of the weights file, and refuses to load when the installed file differs.
    """

    prefix: str
    package: str
    version: str
    file: str
    sha256: str

    def record(self, tower: str) -> dict[str, str]:
        """A plain-dict form for the checkpoint, with the prefix made absolute (``"<tower>.<prefix>"``)."""
        return {
            "prefix": f"{tower}.{self.prefix}",
            "package": self.package,
            "version": self.version,
            "file": self.file,
            "sha256": self.sha256,
        }


class VideoTower(nn.Module):
    """Base of video towers.

    ``forward(x)`` takes ``x`` (B, 3, T, H, W) float32, normalised with the spec's mean/std, and returns
    ``(embedding, features)``: the embedding (B, embed_dim) before L2 normalisation, and the features
    (B, feature_dim) that the view head reads.
    """

    embed_dim: int
    feature_dim: int
    variable_frames: bool = True
    """Whether the tower accepts any frame count up to the spec's (False: exactly the spec's)."""

    def external_weights(self) -> ExternalWeights | None:
        """Frozen weights reloadable from a package instead of the checkpoint (None: all are saved)."""
        return None


class TextTower(nn.Module):
    """Base of text towers: ``tokenize(texts)`` then ``forward(tokens)`` -> (B, embed_dim), not normalised.

    Towers whose trainable part sits on top of a frozen backbone say so with ``frozen_base = True`` and
    split ``forward`` into ``base_features(tokens)`` (frozen, cacheable per text) and ``head(base)``;
    training then computes each distinct text's base features once.
    """

    embed_dim: int
    frozen_base: bool = False

    def tokenize(self, texts: list[str]) -> TextTokens:
        """Tokens of ``texts`` on the CPU (tensors of shape (B, L), int64)."""
        raise NotImplementedError

    def base_features(self, tokens: TextTokens) -> Tensor:
        """Output of the frozen backbone (towers with ``frozen_base``)."""
        raise NotImplementedError(f"{type(self).__name__} has no frozen base")

    def head(self, base: Tensor) -> Tensor:
        """The trainable map from :meth:`base_features` to (B, embed_dim) (towers with ``frozen_base``)."""
        raise NotImplementedError(f"{type(self).__name__} has no frozen base")

    def fit_base_statistics(self, base: Tensor) -> None:
        """Fit fixed statistics of the base features (e.g. their mean) on training texts; default: none."""

    def external_weights(self) -> ExternalWeights | None:
        """Frozen weights reloadable from a package instead of the checkpoint (None: all are saved)."""
        return None


class EchoEncoder(nn.Module):
    """Video, still-image and text encoder into one L2-normalised embedding space, plus a view head.

    Build it with :func:`rag.encoders.create`; the spec it carries (``encoder.spec``) is the resolved
    one (inline architecture configs, no pending downloads) that a checkpoint stores. Models come back
    in eval mode; call ``.train()`` before training.

    Attributes:
        spec: the encoder's spec, preprocessing included.
        video: the video tower.
        text: the text tower.
        view_head: linear map from the video features to ``len(spec.view_classes)`` logits.
        logit_scale: log of the CLIP inverse temperature (scalar, init ``log(1 / 0.07)``);
            contrastive logits are ``logit_scale.exp() * video @ text.T``.
    """

    spec: EncoderSpec
    video: VideoTower
    text: TextTower
    view_head: nn.Linear
    logit_scale: nn.Parameter

    def __init__(
        self, spec: EncoderSpec, video: VideoTower, text: TextTower, *, logit_scale: float = math.log(1 / 0.07)
    ) -> None:
        super().__init__()
        if video.embed_dim != spec.embed_dim or text.embed_dim != spec.embed_dim:
            raise ValueError(
                f"towers give {video.embed_dim}-d (video) and {text.embed_dim}-d (text) embeddings, "
                f"spec {spec.name!r} says {spec.embed_dim}"
            )
        self.spec = spec
        self.video = video
        self.text = text
        self.view_head = nn.Linear(video.feature_dim, len(spec.view_classes))
        self.logit_scale = nn.Parameter(torch.tensor(float(logit_scale)))

    # --- properties ---------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        """The device of the model's parameters."""
        return self.logit_scale.device

    @property
    def embed_dim(self) -> int:
        """Dimension D of the embeddings."""
        return self.spec.embed_dim

    @property
    def view_classes(self) -> tuple[str, ...]:
        """Names of the view head's classes, in logit order."""
        return self.spec.view_classes

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per part (``video``, ``text``, ``view_head``, ``total``, ``trainable``)."""
        params = dict(self.named_parameters())
        return {
            "video": sum(p.numel() for n, p in params.items() if n.startswith("video.")),
            "text": sum(p.numel() for n, p in params.items() if n.startswith("text.")),
            "view_head": sum(p.numel() for p in self.view_head.parameters()),
            "total": sum(p.numel() for p in params.values()),
            "trainable": sum(p.numel() for p in params.values() if p.requires_grad),
        }

    # --- video ----------------------------------------------------------------------------------

    def _check_video(self, x: Tensor) -> None:
        pre = self.spec.preprocessing
        want = f"(B, 3, {pre.frames}, {pre.size}, {pre.size}) float32"
        if not isinstance(x, Tensor) or x.ndim != 5 or x.shape[1] != 3 or not x.is_floating_point():
            got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, Tensor) else type(x).__name__
            raise EncoderInputError(
                f"encoder {self.spec.name!r} takes video tensors {want}, got {got}; "
                "build them with rag.encoders.batch_clips(clips, encoder.spec.preprocessing)"
            )
        t, h, w = x.shape[2:]
        frames_ok = (1 <= t <= pre.frames) if self.video.variable_frames else t == pre.frames
        if not frames_ok or h != pre.size or w != pre.size:
            raise EncoderInputError(
                f"encoder {self.spec.name!r} takes video tensors {want}"
                f"{' (or fewer frames)' if self.video.variable_frames else ''}, got {tuple(x.shape)}; "
                "build them with rag.encoders.batch_clips(clips, encoder.spec.preprocessing)"
            )

    def video_features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Embed clips and classify their views in one pass.

        Args:
            x: (B, 3, T, H, W) float32, normalised with ``spec.preprocessing`` (see :func:`batch_clips`),
                T = ``spec.preprocessing.frames``, H = W = ``spec.preprocessing.size``.

        Returns:
            embedding (B, D) float32, L2-normalised; view logits (B, n_views) float32.
        """
        self._check_video(x)
        x = x.to(self.device)
        emb, feats = self.video(x)
        return F.normalize(emb.float(), dim=-1), self.view_head(feats)

    def encode_video(self, x: Tensor) -> Tensor:
        """Clip embeddings: (B, 3, T, H, W) normalised float32 -> (B, D) float32, L2-normalised."""
        return self.video_features(x)[0]

    def view_probabilities(self, x: Tensor) -> Tensor:
        """View class probabilities: (B, 3, T, H, W) -> (B, n_views) float32, softmax over ``view_classes``."""
        return torch.softmax(self.video_features(x)[1].float(), dim=-1)

    def encode_image(self, x: Tensor) -> Tensor:
        """Still-image embeddings, in the same space as clips: a still is a 1-frame clip.

        Args:
            x: (B, 3, H, W) or (B, 3, 1, H, W) float32, normalised like clips (see :func:`batch_images`).
                Towers that need a fixed frame count get the frame repeated.

        Returns:
            (B, D) float32, L2-normalised.
        """
        if isinstance(x, Tensor) and x.ndim == 4:
            x = x.unsqueeze(2)
        if isinstance(x, Tensor) and x.ndim == 5 and x.shape[2] == 1 and not self.video.variable_frames:
            x = x.expand(-1, -1, self.spec.preprocessing.frames, -1, -1)
        return self.encode_video(x)

    # --- text -----------------------------------------------------------------------------------

    def tokenize(self, texts: Sequence[str]) -> TextTokens:
        """Tokens of ``texts`` on the model's device (the spec's tokenizer, ``max_length`` tokens at most)."""
        if isinstance(texts, str):
            raise EncoderInputError("encode_text takes a sequence of strings, got one string; wrap it in a list")
        tokens = self.text.tokenize([str(t) for t in texts])
        return {k: (v.to(self.device) if isinstance(v, Tensor) else v) for k, v in tokens.items()}

    def encode_text(self, texts: Sequence[str]) -> Tensor:
        """Text embeddings: B strings -> (B, D) float32, L2-normalised (tokenised on the model's device)."""
        if len(texts) == 0:
            return torch.zeros(0, self.embed_dim, device=self.device)
        emb = self.text(self.tokenize(texts))
        return F.normalize(emb.float(), dim=-1)

    # --- checkpoints ------------------------------------------------------------------------------

    def external_weights(self) -> list[dict[str, str]]:
        """Records of the frozen weights a checkpoint leaves out (absolute key prefixes)."""
        records = []
        for tower_name, tower in (("video", self.video), ("text", self.text)):
            ext = tower.external_weights()
            if ext is not None:
                records.append(ext.record(tower_name))
        return records

    def checkpoint_state(self) -> dict[str, Tensor]:
        """The state dict to save: CPU tensors, without the keys of :meth:`external_weights`."""
        prefixes = tuple(r["prefix"] for r in self.external_weights())
        return {k: v.detach().cpu() for k, v in self.state_dict().items() if not (prefixes and k.startswith(prefixes))}
