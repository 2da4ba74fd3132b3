"""Building an encoder from a spec: :func:`build` (fresh towers) and :func:`resolve_device`.

``build(spec)`` makes fresh towers (random weights, except pretrained weights that exist offline:
all-MiniLM-L6-v2, and open_clip weights named by the entry and present locally). Users call
:func:`rag.encoders.create`, which also restores checkpoints (:mod:`rag.encoders.create`).

Importing this module does not import torch; building does, after the cheap checks (registry entry,
locally cached hub weights) have passed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.core.errors import EncoderError
from rag.encoders.pretrained import preflight
from rag.encoders.spec import EncoderSpec
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
