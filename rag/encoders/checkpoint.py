"""Encoder checkpoints: one file holding the spec, the weights and the training state.

Layout (``torch.save`` of a plain dict, readable with ``torch.load(weights_only=True)``)::

    {"format": "rag-encoder/1",
     "spec": EncoderSpec.model_dump(mode="json"),   # preprocessing included; wins over the registry
     "state_dict": {name: CPU tensor},               # without frozen package weights (see below)
     "external": [{"prefix", "package", "version", "file", "sha256"}],
     "epoch": int, "optimizer": optimizer.state_dict() or None, "extra": {...},
     "versions": {"torch": ..., "rag": ...}}

Frozen weights that ship in an installed package (the MiniLM text tower with ``freeze: true``) are
left out, which keeps checkpoints small (a few MB instead of ~90 MB more); the record names the
package, its version and the sha256 of its weights file, and loading refuses a package whose file
differs. A fine-tuned (unfrozen) MiniLM is saved in full.

Files are written atomically (temporary file in the same folder, fsync, rename).
"""

from __future__ import annotations

import hashlib
import io
import pickle
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from torch import Tensor

from rag.core.clipfile import write_atomic
from rag.core.errors import BareStateDictError, CheckpointError
from rag.core.version import __version__ as rag_version
from rag.encoders.model import EchoEncoder
from rag.encoders.spec import EncoderSpec

FORMAT = "rag-encoder/1"
"""Format tag of the checkpoints this module writes and reads."""


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint holds besides the model.

    Attributes:
        sha256: hex sha256 of the checkpoint file (what index manifests record).
        epoch: training epoch stored with it.
        optimizer: the optimizer ``state_dict()``, or None.
        extra: free-form plain values stored with it.
        path: the file.
        spec: the encoder spec it holds.
        external: frozen weights loaded from installed packages (see module doc).
    """

    sha256: str
    epoch: int
    optimizer: dict[str, Any] | None
    extra: dict[str, Any]
    path: Path | None = None
    spec: EncoderSpec | None = None
    external: list[dict[str, str]] = field(default_factory=list)


_PLAIN_TYPES = (str, int, float, bool, type(None))


def _check_plain(value: Any, where: str) -> None:
    """Refuse values ``torch.load(weights_only=True)`` could not read back (fail on save, not on load)."""
    if type(value) in _PLAIN_TYPES or isinstance(value, Tensor):
        return
    if type(value) in (dict, OrderedDict):
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise CheckpointError(f"{where} has a key {k!r} of type {type(k).__name__}; use str or int keys")
            _check_plain(v, f"{where}[{k!r}]")
        return
    if type(value) in (list, tuple):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    raise CheckpointError(
        f"{where} is a {type(value).__name__}; checkpoints hold only str, int, float, bool, None, tensors, "
        "and lists / tuples / dicts of them (convert it, e.g. to a str or a list)"
    )


def save_checkpoint(
    model: EchoEncoder,
    path: Path,
    *,
    epoch: int = 0,
    optimizer: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """Write ``model`` (spec + weights) and training state to ``path`` atomically.

    Args:
        model: the encoder.
        path: destination file (folders are created).
        epoch: training epoch to record.
        optimizer: ``optimizer.state_dict()`` to resume training, or None.
        extra: plain values to store (str/int/float/bool/None/tensors and lists/dicts of them).

    Returns:
        Hex sha256 of the written file.

    Raises:
        CheckpointError: ``optimizer`` or ``extra`` holds values a safe load could not read back.
    """
    if not isinstance(model, EchoEncoder):
        raise CheckpointError(f"save_checkpoint takes an EchoEncoder, got {type(model).__name__}")
    extra = dict(extra or {})
    _check_plain(extra, "extra")
    if optimizer is not None:
        _check_plain(optimizer, "optimizer")
    payload: dict[str, Any] = {
        "format": FORMAT,
        "spec": model.spec.model_dump(mode="json"),
        "state_dict": model.checkpoint_state(),
        "external": model.external_weights(),
        "epoch": int(epoch),
        "optimizer": optimizer,
        "extra": extra,
        "versions": {"torch": str(torch.__version__), "rag": str(rag_version)},
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    data = buf.getvalue()
    write_atomic(Path(path), data)
    return hashlib.sha256(data).hexdigest()


def _reason(e: BaseException) -> str:
    """The informative line of a torch.load error."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    detail = next((ln for ln in lines if "WeightsUnpickler error" in ln), lines[0] if lines else "")
    return detail[:300]


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Read and check a checkpoint file without building the model; adds ``"sha256"`` and ``"path"``.

    Raises:
        CheckpointError: the file is missing, unreadable, or not a ``rag-encoder/1`` checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint '{path}' does not exist; check the path or train/save an encoder first")
    try:
        with path.open("rb") as f:
            data = f.read()
        payload: Any = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile) as e:
        raise CheckpointError(
            f"Checkpoint '{path}' cannot be read ({type(e).__name__}: {_reason(e)}); the file is corrupt, "
            "truncated, not a torch file, or holds objects a safe load refuses: save it again with "
            "rag.encoders.save_checkpoint"
        ) from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        if isinstance(payload, Mapping) and payload and all(isinstance(v, Tensor) for v in payload.values()):
            what = "a bare state dict (for EchoPrime's echo_prime_encoder.pt use rag.encoders.load_echoprime_weights)"
        elif isinstance(payload, dict):
            what = f"format {payload.get('format')!r}"
        else:
            what = f"a {type(payload).__name__}"
        bare = isinstance(payload, Mapping) and payload and all(isinstance(v, Tensor) for v in payload.values())
        raise (BareStateDictError if bare else CheckpointError)(
            f"Checkpoint '{path}' is not a rag encoder checkpoint: it holds {what}, expected format {FORMAT!r} "
            "written by rag.encoders.save_checkpoint"
        )
    for key, kind in (("spec", dict), ("state_dict", dict), ("external", list), ("extra", dict)):
        if not isinstance(payload.get(key), kind):
            raise CheckpointError(f"Checkpoint '{path}' is damaged: '{key}' is missing or not a {kind.__name__}")
    payload["sha256"] = hashlib.sha256(data).hexdigest()
    payload["path"] = str(path)
    return payload


def _verify_external(model: EchoEncoder, records: list[dict[str, str]], path: str) -> tuple[str, ...]:
    have = {r["prefix"]: r for r in model.external_weights()}
    for rec in records:
        cur = have.get(rec.get("prefix", ""))
        if cur is None:
            raise CheckpointError(
                f"Checkpoint '{path}' leaves out {rec.get('prefix')!r} (frozen weights of {rec.get('package')}), "
                "but the rebuilt encoder does not load them from a package; the checkpoint is inconsistent"
            )
        if cur["sha256"] != rec.get("sha256"):
            raise CheckpointError(
                f"Checkpoint '{path}' was saved with {rec.get('package')} {rec.get('version')} "
                f"({rec.get('file')} sha256 {str(rec.get('sha256'))[:12]}...), but the installed "
                f"{cur['package']} {cur['version']} has sha256 {cur['sha256'][:12]}...; "
                f"install {rec.get('package')}=={rec.get('version')}"
            )
    return tuple(r["prefix"] for r in records)


def restore(payload: dict[str, Any], *, device: str = "cpu") -> tuple[EchoEncoder, CheckpointInfo]:
    """Build the encoder a :func:`read_checkpoint` payload describes and load its weights (eval mode).

    Raises:
        CheckpointError: the spec or weights do not fit (the message lists the keys).
    """
    from rag.encoders.factory import build, resolve_device

    dev = resolve_device(device)
    path = str(payload.get("path", "<checkpoint>"))
    try:
        spec = EncoderSpec.model_validate(payload["spec"])
    except ValidationError as e:
        raise CheckpointError(f"Checkpoint '{path}' holds an invalid encoder spec: {e}") from e
    model = build(spec, device="cpu")
    external = _verify_external(model, payload["external"], path)
    state = payload["state_dict"]
    if not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()):
        raise CheckpointError(f"Checkpoint '{path}' is damaged: its state_dict holds non-tensor values")
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as e:
        raise CheckpointError(f"Checkpoint '{path}' weights do not fit encoder {spec.name!r}: {e}") from e
    missing = [k for k in result.missing_keys if not (external and k.startswith(external))]
    if missing or result.unexpected_keys:
        raise CheckpointError(
            f"Checkpoint '{path}' weights do not fit encoder {spec.name!r}: "
            f"missing keys {missing[:8]}{'...' if len(missing) > 8 else ''}, "
            f"unexpected keys {result.unexpected_keys[:8]}{'...' if len(result.unexpected_keys) > 8 else ''}"
        )
    model = model.to(dev).eval()
    info = CheckpointInfo(
        sha256=str(payload["sha256"]),
        epoch=int(payload.get("epoch", 0)),
        optimizer=payload.get("optimizer"),
        extra=dict(payload["extra"]),
        path=Path(path),
        spec=model.spec,
        external=list(payload["external"]),
    )
    return model, info


def load_checkpoint(path: Path, *, device: str = "cpu") -> tuple[EchoEncoder, CheckpointInfo]:
    """Restore an encoder (spec, preprocessing, weights) and its training state from ``path``.

    Returns:
        The encoder in eval mode, and :class:`CheckpointInfo` (sha256, epoch, optimizer state, extra).

    Raises:
        CheckpointError: the file is missing, corrupt, foreign, or does not fit its own spec.
    """
    return restore(read_checkpoint(Path(path)), device=device)
