"""Encoder stage: contrastive video / still / text towers and a view head, built from a registry.

Registry entries are YAML files (shipped ones in ``rag/encoders/registry/``, user ones in folders named
by ``RAG_ENCODER_REGISTRY``); :func:`create` is the one factory::

    import rag.encoders as enc
    enc.list_encoders()                        # ['echo-video-grid', 'echo-video-tiny', 'echoclip', 'echoprime-mvit']
    model = enc.create("echo-video-tiny")      # fresh towers (MiniLM text weights pretrained)
    x = enc.batch_clips(clips, model.spec.preprocessing)   # (B, 3, T, H, W) float32, normalised
    v = model.encode_video(x)                  # (B, D) float32, L2-normalised
    t = model.encode_text(["normal LV size"])  # (B, D) float32, L2-normalised
    sha = enc.save_checkpoint(model, Path("ckpt/demo.pt"))
    model = enc.create(checkpoint="ckpt/demo.pt")   # spec + preprocessing come from the file

Importing this package does not import torch: the model, checkpoint and preprocessing modules load on
first use of their names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.core.digest import file_sha256
from rag.core.lazy import lazy_exports
from rag.encoders.pretrained import ALIASES
from rag.encoders.protocols import Encoder
from rag.encoders.registry import REGISTRY_ENV, get_spec, list_encoders
from rag.encoders.spec import DEFAULT_ENCODER, EncoderSpec, Preprocessing, TowerSpec
from rag.vocab.views import COARSE_VIEWS

if TYPE_CHECKING:
    from rag.encoders.checkpoint import CheckpointInfo, load_checkpoint, save_checkpoint
    from rag.encoders.create import create
    from rag.encoders.factory import build
    from rag.encoders.model import EchoEncoder
    from rag.encoders.preprocess import batch_clips, batch_images, clip_to_tensor, image_to_tensor
    from rag.encoders.towers.mvit import load_echoprime_weights

VIEW_CLASSES: tuple[str, ...] = COARSE_VIEWS
"""Classes of the view heads: EchoPrime's 11 coarse views."""

_LAZY: dict[str, str] = {
    "create": "rag.encoders.create",
    "build": "rag.encoders.factory",
    "EchoEncoder": "rag.encoders.model",
    "save_checkpoint": "rag.encoders.checkpoint",
    "load_checkpoint": "rag.encoders.checkpoint",
    "CheckpointInfo": "rag.encoders.checkpoint",
    "clip_to_tensor": "rag.encoders.preprocess",
    "batch_clips": "rag.encoders.preprocess",
    "image_to_tensor": "rag.encoders.preprocess",
    "batch_images": "rag.encoders.preprocess",
    "load_echoprime_weights": "rag.encoders.towers.mvit",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())


__all__ = [
    "ALIASES",
    "DEFAULT_ENCODER",
    "REGISTRY_ENV",
    "VIEW_CLASSES",
    "CheckpointInfo",
    "EchoEncoder",
    "Encoder",
    "EncoderSpec",
    "Preprocessing",
    "TowerSpec",
    "batch_clips",
    "batch_images",
    "build",
    "clip_to_tensor",
    "create",
    "file_sha256",
    "get_spec",
    "image_to_tensor",
    "list_encoders",
    "load_checkpoint",
    "load_echoprime_weights",
    "save_checkpoint",
]
