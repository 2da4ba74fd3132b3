"""The one factory: registry entry or checkpoint -> :class:`EchoEncoder`.

``create("echo-video-tiny")`` builds fresh towers (random weights, except pretrained weights that
exist offline: all-MiniLM-L6-v2, and open_clip weights named by the entry and present locally).
``create(checkpoint="ckpt.pt")`` restores spec, preprocessing and weights from the file; a name given
too must match the checkpoint's.

Importing this module does not import torch; building does, after the cheap checks (registry entry,
locally cached hub weights) have passed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rag.core.errors import BareStateDictError, CheckpointError, EncoderError
from rag.encoders.pretrained import preflight
from rag.encoders.registry import get_spec
from rag.encoders.spec import DEFAULT_ENCODER, EncoderSpec
from rag.encoders.towers import TEXT_BUILDERS, VIDEO_BUILDERS, BuildContext, load_builder

if TYPE_CHECKING:
    import torch

    from rag.encoders.model import EchoEncoder


def resolve_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch device that exists here.

    Raises:
        EncoderError: the value is not a device name, or names a CUDA/MPS device that is absent.
    """
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise EncoderError(f"device {device!r} is not a torch device name; use 'cpu', 'cuda' or 'cuda:N'") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise EncoderError(f"device {device!r} asked for, but CUDA is not available here; use device='cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise EncoderError(
                f"device {device!r} asked for, but only {torch.cuda.device_count()} CUDA device(s) exist; "
                f"use 'cuda:0' .. 'cuda:{torch.cuda.device_count() - 1}'"
            )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise EncoderError(f"device {device!r} asked for, but MPS is not available here; use device='cpu'")
    return dev


def build(spec: EncoderSpec, *, device: str | torch.device = "cpu") -> EchoEncoder:
    """An encoder with fresh towers for ``spec`` (pretrained parts that exist offline loaded), eval mode.

    The returned model's ``spec`` is the resolved spec (see :class:`~rag.encoders.towers.BuildContext`).

    Raises:
        WeightsUnavailableError: the spec names weights that are not present locally.
        EncoderError: the spec cannot be built (the message names the value and the fix).
    """
    preflight(spec)  # before importing torch: missing hub weights fail at once
    from rag.encoders.model import EchoEncoder

    dev = resolve_device(device)
    ctx = BuildContext.of(spec)
    video = load_builder(VIDEO_BUILDERS, spec.video.architecture)(ctx)
    text = load_builder(TEXT_BUILDERS, spec.text.architecture)(ctx)
    model = EchoEncoder(ctx.resolved_spec(), video, text, logit_scale=ctx.logit_scale)
    return model.to(dev).eval()


def create(name: str | None = None, checkpoint: str | Path | None = None, *, device: str = "cpu") -> EchoEncoder:
    """Create an encoder by registry name, from a checkpoint, or both (checked to agree).

    Args:
        name: registry name (see :func:`list_encoders`); default ``echo-video-tiny`` when no checkpoint.
        checkpoint: a file written by :func:`save_checkpoint`; its spec (preprocessing included) wins
            over the registry, which is not consulted. With ``name="echoprime-mvit"`` it may also be
            EchoPrime's released ``echo_prime_encoder.pt`` (a bare state dict of the video tower),
            loaded into the registry entry as :func:`load_echoprime_weights` does.
        device: where the model lives (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...).

    Returns:
        The encoder, in eval mode.

    Raises:
        UnknownEncoderError: ``name`` is not registered.
        CheckpointError: the checkpoint is unreadable or holds another encoder than ``name``.
        WeightsUnavailableError: the entry names weights that are not present locally.
    """
    if checkpoint is not None:
        from rag.encoders.checkpoint import read_checkpoint, restore

        try:
            payload = read_checkpoint(Path(checkpoint))
        except BareStateDictError:
            if name is None:
                raise
            return _from_state_dict(name, Path(checkpoint), device=device)
        held = payload["spec"].get("name")
        if name is not None and name != held:
            raise CheckpointError(
                f"Checkpoint '{checkpoint}' holds encoder {held!r}, not {name!r}; pass name={held!r} or leave "
                "the name out (the checkpoint's spec is used)"
            )
        model, _ = restore(payload, device=device)
        return model
    spec = get_spec(name or DEFAULT_ENCODER)
    preflight(spec)
    return build(spec, device=device)


def _from_state_dict(name: str, path: Path, *, device: str) -> EchoEncoder:
    """The registry entry ``name`` with a released bare state dict loaded into its video tower.

    Raises:
        CheckpointError: the entry's video tower is not EchoPrime's MViT, or the keys do not fit.
    """
    from rag.encoders.towers.mvit import MViTVideoTower, load_echoprime_weights

    model = build(get_spec(name), device="cpu")
    if not isinstance(model.video, MViTVideoTower):
        raise CheckpointError(
            f"Checkpoint '{path}' is a bare state dict; only an EchoPrime MViT entry (echoprime-mvit) loads one "
            f"directly, and '{name}' has a {type(model.video).__name__} video tower. Save a rag checkpoint with "
            "rag.encoders.save_checkpoint instead"
        )
    load_echoprime_weights(model, path)
    return model.to(resolve_device(device)).eval()
