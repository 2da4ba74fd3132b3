"""Where pretrained open_clip weights are looked for: local files and local caches only.

Nothing here downloads. A hub repository (``hf-hub:org/repo``), an alias of one (``echoclip``,
``echoclip-r``, ``biomedclip``) or an open_clip tag (``openai``, ...) resolves only when its files
are already in the Hugging Face cache (or, for tags with a URL, in open_clip's ``~/.cache/clip``);
otherwise :class:`~rag.core.errors.WeightsUnavailableError` says at once which files to download and
where to put them. This module does not import torch or open_clip, so the check runs before any
model is built.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.core.errors import EncoderError, WeightsUnavailableError
from rag.encoders.spec import EncoderSpec, OpenClipFramesKwargs

HF_HUB_PREFIX = "hf-hub:"
LOCAL_DIR_PREFIX = "local-dir:"

ALIASES: dict[str, str] = {
    "echoclip": "hf-hub:mkaichristensen/echo-clip",
    "echoclip-r": "hf-hub:mkaichristensen/echo-clip-r",
    "biomedclip": "hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224",
}
"""Short names of open_clip models published on the Hugging Face hub."""

CONFIG_FILE = "open_clip_config.json"
WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
"""Weight file names of an open_clip hub repository, in order of preference."""
_LOCAL_WEIGHT_FILES = (*WEIGHT_FILES, "open_clip_pytorch_model.safetensors", "model.safetensors", "pytorch_model.bin")


def hf_cache_dir(override: str | Path | None = None) -> Path:
    """The Hugging Face hub cache folder, read from the environment at call time.

    ``override``, else ``HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``$XDG_CACHE_HOME/huggingface/hub``,
    else ``~/.cache/huggingface/hub``.
    """
    if override:
        return Path(override).expanduser()
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def open_clip_url_cache() -> Path:
    """open_clip's folder for weights downloaded by URL (``~/.cache/clip``)."""
    return Path.home() / ".cache" / "clip"


def cached_hub_file(repo_id: str, filename: str, cache_dir: Path) -> Path | None:
    """The cached copy of ``repo_id/filename`` (main revision), or None; never touches the network."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename, cache_dir=str(cache_dir))
    return Path(found) if isinstance(found, str) else None


def expand_alias(source: str) -> str:
    """``echoclip`` -> ``hf-hub:mkaichristensen/echo-clip``; other values unchanged."""
    return ALIASES.get(source, source)


def is_bundle(source: object) -> bool:
    """Whether ``source`` names config and weights together (hub repository, local folder, alias)."""
    if not isinstance(source, str):
        return False
    source = expand_alias(source)
    return source.startswith((HF_HUB_PREFIX, LOCAL_DIR_PREFIX))


@dataclass(frozen=True)
class Bundle:
    """An open_clip model config and weights found locally.

    Attributes:
        source: what was asked for (``hf-hub:org/repo`` or ``local-dir:/folder``).
        model_cfg: the open_clip model config (``embed_dim``, ``vision_cfg``, ``text_cfg``, ...).
        preprocess_cfg: the weights' preprocessing (``mean``/``std`` on the 0-1 scale, ``size``), may be empty.
        weights: the weights file.
    """

    source: str
    model_cfg: dict[str, Any]
    preprocess_cfg: dict[str, Any] = field(default_factory=dict)
    weights: Path | None = None


def _download_hint(repo_id: str, files: list[str], cache_dir: Path) -> str:
    return (
        f"On a machine with internet access run `hf download {repo_id} {' '.join(files)} --cache-dir {cache_dir}` "
        f"(or copy that folder's models--{repo_id.replace('/', '--')} here), or download the files from "
        f"https://huggingface.co/{repo_id} and set `model: /path/to/{CONFIG_FILE}` and "
        f"`pretrained: /path/to/{files[-1]}` in the encoder entry"
    )


def _read_config(path: Path, source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise EncoderError(f"open_clip config '{path}' of {source} cannot be read: {e}") from e
    cfg = data.get("model_cfg", data) if isinstance(data, dict) else None
    if not isinstance(cfg, dict) or not all(k in cfg for k in ("embed_dim", "vision_cfg", "text_cfg")):
        raise EncoderError(
            f"'{path}' ({source}) is not an open_clip model config: it needs embed_dim, vision_cfg and text_cfg "
            "(at the top level or under model_cfg)"
        )
    pre = data.get("preprocess_cfg", {}) if isinstance(data, dict) else {}
    return cfg, pre if isinstance(pre, dict) else {}


def resolve_bundle(source: str, cache_dir: str | Path | None = None) -> Bundle:
    """Find the config and weights of a hub repository, alias or local folder, locally only.

    Raises:
        WeightsUnavailableError: files are missing (the message says what to download and where).
        EncoderError: the config is unreadable or not an open_clip model config.
    """
    expanded = expand_alias(source)
    named = f"{source!r}" + (f" (= {expanded})" if expanded != source else "")
    if expanded.startswith(LOCAL_DIR_PREFIX):
        folder = Path(expanded.removeprefix(LOCAL_DIR_PREFIX)).expanduser()
        config = folder / CONFIG_FILE
        if not config.is_file():
            raise WeightsUnavailableError(
                f"open_clip source {named}: '{config}' does not exist; put the model's {CONFIG_FILE} and "
                f"weights ({' or '.join(WEIGHT_FILES)}) in '{folder}'"
            )
        weights = next((folder / f for f in _LOCAL_WEIGHT_FILES if (folder / f).is_file()), None)
        if weights is None:
            raise WeightsUnavailableError(
                f"open_clip source {named}: no weights file in '{folder}'; put {' or '.join(WEIGHT_FILES)} there"
            )
        cfg, pre = _read_config(config, named)
        return Bundle(expanded, cfg, pre, weights)
    if not expanded.startswith(HF_HUB_PREFIX) or "/" not in expanded.removeprefix(HF_HUB_PREFIX):
        raise EncoderError(
            f"open_clip source {named} is not 'hf-hub:org/repo', 'local-dir:/folder' or an alias {sorted(ALIASES)}"
        )
    repo_id = expanded.removeprefix(HF_HUB_PREFIX).strip("/")
    cache = hf_cache_dir(cache_dir)
    config_path = cached_hub_file(repo_id, CONFIG_FILE, cache)
    weights = next((p for f in WEIGHT_FILES if (p := cached_hub_file(repo_id, f, cache)) is not None), None)
    if config_path is None or weights is None:
        missing = ([CONFIG_FILE] if config_path is None else []) + ([WEIGHT_FILES[-1]] if weights is None else [])
        raise WeightsUnavailableError(
            f"Pretrained weights {named} are not available offline: {', '.join(missing)} of the Hugging Face "
            f"repository {repo_id} not found in the local cache '{cache}' (nothing is downloaded). "
            f"{_download_hint(repo_id, [CONFIG_FILE, WEIGHT_FILES[-1]], cache)}."
        )
    cfg, pre = _read_config(config_path, named)
    return Bundle(expanded, cfg, pre, weights)


def preflight(spec: EncoderSpec) -> None:
    """Fail at once when ``spec`` names hub weights that are not cached (no torch or open_clip import).

    Raises:
        WeightsUnavailableError: see :func:`resolve_bundle`.
    """
    if spec.video.architecture != "open-clip-frames":
        return
    kw = OpenClipFramesKwargs.model_validate(spec.video.kwargs)
    for source in (kw.model, kw.pretrained):
        if isinstance(source, str) and is_bundle(source):
            resolve_bundle(source, kw.cache_dir)
