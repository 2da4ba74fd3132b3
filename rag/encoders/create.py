"""The one factory users call: an encoder by registry name, from a checkpoint, or from EchoPrime's
released weights.

``create("echo-video-tiny")`` builds fresh towers; ``create(checkpoint="ckpt.pt")`` restores spec,
preprocessing and weights from the file (a name given too must match the checkpoint's).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rag.core.errors import BareStateDictError, CheckpointError
from rag.encoders.factory import build, resolve_device
from rag.encoders.pretrained import preflight
from rag.encoders.registry import get_spec
from rag.encoders.spec import DEFAULT_ENCODER

if TYPE_CHECKING:
    from rag.encoders.model import EchoEncoder

__all__ = ["create"]


def create(name: str | None = None, checkpoint: str | Path | None = None, *, device: str = "cpu") -> EchoEncoder:
    """Create an encoder by registry name, from a checkpoint, or both (checked to agree).

    Args:
        name: registry name (see :func:`list_encoders`); default :data:`DEFAULT_ENCODER` when no checkpoint.
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
