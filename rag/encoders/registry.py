"""The encoder registry: one YAML file per encoder, shipped in the package, plus user folders.

Entries come from ``rag/encoders/registry/*.yaml`` inside the installed package, then from every
folder named in ``RAG_ENCODER_REGISTRY`` (``os.pathsep``-separated). A user entry with the name of a
shipped one replaces it; two user files with the same name are an error. Folders are read on every
call, so a changed variable or a new file takes effect at once. Nothing here imports torch.

An entry file holds the fields of :class:`~rag.encoders.spec.EncoderSpec`::

    name: my-echoclip
    description: EchoCLIP weights from the local Hugging Face cache.
    embed_dim: 512
    video: {architecture: open-clip-frames, kwargs: {model: null, pretrained: echoclip}}
    text: {architecture: open-clip-text}
    preprocessing: {frames: 16, stride: 2, target_fps: 30, size: 224,
                    mean: [122.77, 116.75, 104.09], std: [68.50, 66.63, 70.32],
                    tokenizer: open_clip, max_length: 77}
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rag.core.errors import ConfigError, UnknownEncoderError
from rag.core.lookup import look_up_option
from rag.core.validation import format_validation_error
from rag.encoders.spec import EncoderSpec

logger = logging.getLogger(__name__)

REGISTRY_ENV = "RAG_ENCODER_REGISTRY"
"""Environment variable: extra registry folders, separated by ``os.pathsep``."""

_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class RegistryEntry:
    """A parsed entry and the file it came from."""

    spec: EncoderSpec
    source: str
    builtin: bool


def builtin_registry() -> Traversable:
    """The folder of the entries shipped with the package."""
    return resources.files("rag.encoders") / "registry"


def user_registry_dirs() -> list[Path]:
    """Folders named in ``RAG_ENCODER_REGISTRY``, in order.

    Raises:
        ConfigError: a named folder does not exist.
    """
    raw = os.environ.get(REGISTRY_ENV, "")
    dirs: list[Path] = []
    for part in raw.split(os.pathsep):
        if not part.strip():
            continue
        path = Path(part.strip()).expanduser()
        if not path.is_dir():
            raise ConfigError(
                f"{REGISTRY_ENV} names {str(path)!r}, which is not a folder; create it or remove it from the variable"
            )
        dirs.append(path)
    return dirs


def _parse(text: str, source: str) -> EncoderSpec:
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"Encoder entry {source} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"Encoder entry {source} must be a mapping of EncoderSpec fields, got {type(data).__name__}")
    try:
        return EncoderSpec.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"Encoder entry {source} is invalid: {format_validation_error(e)}") from e


def _entry_files(folder: Traversable) -> list[Traversable]:
    return sorted(
        (f for f in folder.iterdir() if f.is_file() and f.name.endswith(_SUFFIXES) and not f.name.startswith(".")),
        key=lambda f: f.name,
    )


def load_registry() -> dict[str, RegistryEntry]:
    """Every entry by name: shipped ones, then user folders (which may replace shipped names).

    Raises:
        ConfigError: an entry file is malformed, or two user files define the same name.
    """
    entries: dict[str, RegistryEntry] = {}
    for f in _entry_files(builtin_registry()):
        source = f"<package>/rag/encoders/registry/{f.name}"
        spec = _parse(f.read_text(encoding="utf-8"), source)
        if spec.name in entries:
            raise ConfigError(f"Encoder name {spec.name!r} defined twice: {entries[spec.name].source} and {source}")
        entries[spec.name] = RegistryEntry(spec, source, builtin=True)
    for folder in user_registry_dirs():
        for f in _entry_files(folder):
            source = str(folder / f.name)
            spec = _parse(f.read_text(encoding="utf-8"), source)
            previous = entries.get(spec.name)
            if previous is not None and not previous.builtin:
                raise ConfigError(
                    f"Encoder name {spec.name!r} defined twice: {previous.source} and {source}; rename one of them"
                )
            if previous is not None:
                logger.info("encoder entry %s replaces the shipped entry %s", source, spec.name)
            entries[spec.name] = RegistryEntry(spec, source, builtin=False)
    return entries


def list_encoders() -> list[str]:
    """Names of all registered encoders, sorted."""
    return sorted(load_registry())


def get_spec(name: str) -> EncoderSpec:
    """The spec of a registered encoder.

    Raises:
        UnknownEncoderError: no entry has that name (the message suggests the closest name).
    """
    entries = load_registry()
    if name in entries:
        return entries[name].spec
    look_up_option(
        name,
        entries,
        what="encoder",
        error=UnknownEncoderError,
        fix=f"To add one, put a YAML entry in a folder named in {REGISTRY_ENV}.",
    )
    raise AssertionError("unreachable")


def entry_source(name: str) -> str:
    """Where the entry ``name`` was read from (a package path or a file)."""
    entries = load_registry()
    if name not in entries:
        get_spec(name)  # raises with the suggestion
    return entries[name].source
