"""``open-clip-frames`` / ``open-clip-text``: an open_clip model as frame encoder and text encoder.

EchoCLIP-style: the image tower embeds every frame, the L2-normalised frame embeddings are averaged
into the clip embedding (which :class:`~rag.encoders.model.EchoEncoder` normalises again). A still
image is a 1-frame clip, so ``EchoEncoder.encode_image`` gives exactly the open_clip image embedding.
The text tower is the same open_clip model's text encoder with its own tokenizer.

Any open_clip architecture works: a config name from ``open_clip.list_models()``, a config JSON, an
inline config dict (e.g. a tiny ViT for tests), or a hub repository / local folder / alias with its
weights (see :mod:`rag.encoders.pretrained`). The resolved spec stores the config inline and no
weights source, so a checkpoint never needs the hub again.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from rag.core.errors import CheckpointError, EncoderError, WeightsUnavailableError
from rag.core.lookup import did_you_mean
from rag.encoders.model import TextTokens, TextTower, VideoTower
from rag.encoders.pretrained import (
    ALIASES,
    cached_hub_file,
    hf_cache_dir,
    is_bundle,
    open_clip_url_cache,
    resolve_bundle,
)
from rag.encoders.spec import OPEN_CLIP_TOKENIZER, OpenClipFramesKwargs, OpenClipTextKwargs
from rag.encoders.towers import BuildContext

logger = logging.getLogger(__name__)

_SHARED_KEY = "open_clip_text_model"
_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


@dataclass(frozen=True)
class _Source:
    cfg: dict[str, Any]
    weights: Path | None
    mean: tuple[float, float, float] | None  # 0-1 scale
    std: tuple[float, float, float] | None
    tokenizer: str
    origin: str


def _triple(value: Any) -> tuple[float, float, float] | None:
    """A per-channel (R, G, B) statistic, or None when absent or not three numbers."""
    if isinstance(value, (list, tuple)) and len(value) == 3 and all(isinstance(v, (int, float)) for v in value):
        return (float(value[0]), float(value[1]), float(value[2]))
    return None


def _validate_cfg(cfg: Any, what: str) -> dict[str, Any]:
    if not isinstance(cfg, dict) or not all(k in cfg for k in ("embed_dim", "vision_cfg", "text_cfg")):
        raise EncoderError(f"{what} is not an open_clip model config: it needs embed_dim, vision_cfg and text_cfg")
    if "multimodal_cfg" in cfg:
        raise EncoderError(f"{what} is a CoCa model (multimodal_cfg); only CLIP-style open_clip models are supported")
    return copy.deepcopy(cfg)


def _model_config(model: str | dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The config of ``model`` and its open_clip name (None for JSON files and inline dicts)."""
    if isinstance(model, dict):
        return _validate_cfg(model, "the inline `model` config"), None
    if model.endswith(".json") or os.sep in model:
        path = Path(model).expanduser()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise EncoderError(f"open_clip model config '{path}' cannot be read: {e}") from e
        if isinstance(data, dict) and "model_cfg" in data:
            data = data["model_cfg"]
        return _validate_cfg(data, f"'{path}'"), None
    import open_clip

    cfg = open_clip.get_model_config(model)
    if cfg is None:
        names = open_clip.list_models()
        hint = did_you_mean(model, names, n=3)
        raise EncoderError(
            f"Unknown open_clip model {model!r}.{hint} Use a name from open_clip.list_models() ({len(names)} "
            "configs), a path to a model-config JSON, an inline config dict, or an hf-hub:/local-dir: source"
        )
    return _validate_cfg(cfg, f"open_clip config {model!r}"), model


def _tag_weights(name: str, tag: str, tag_cfg: dict[str, Any], cache_dir: str | None) -> Path:
    """The local file of open_clip tag ``name``/``tag``, or WeightsUnavailableError naming what to fetch."""
    if tag_cfg.get("file"):
        path = Path(tag_cfg["file"]).expanduser()
        if path.is_file():
            return path
    cache = hf_cache_dir(cache_dir)
    options: list[str] = []
    hub = str(tag_cfg.get("hf_hub", "") or "")
    if hub:
        # "org/repo/" (default file names) or "org/repo/filename"
        repo_id, filename = (hub.rstrip("/"), "") if hub.endswith("/") else hub.rsplit("/", 1)
        candidates = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        if filename.endswith((".bin", ".pth")):
            candidates.insert(0, filename[:-4] + ".safetensors")
        for f in candidates:
            found = cached_hub_file(repo_id, f, cache)
            if found is not None:
                return found
        options.append(f"`hf download {repo_id} {candidates[-1]} --cache-dir {cache}` (Hugging Face cache '{cache}')")
    url = str(tag_cfg.get("url", "") or "")
    if url:
        target = open_clip_url_cache() / os.path.basename(url)
        if target.is_file():
            return target
        options.append(f"{url} saved as '{target}'")
    raise WeightsUnavailableError(
        f"open_clip weights {name!r} / {tag!r} are not available offline (nothing is downloaded). "
        f"On a machine with internet access get {' or '.join(options) or 'the weights file'}, "
        f"or download the file anywhere and set `pretrained: /path/to/file` in the encoder entry"
    )


def _tokenizer_for(cfg: dict[str, Any], name: str | None) -> str:
    hf_tok = cfg.get("text_cfg", {}).get("hf_tokenizer_name")
    if hf_tok:
        return f"open_clip:hf:{hf_tok}"
    if name is not None:
        return f"open_clip:{name}"
    return "open_clip:simple"


def _resolve(kw: OpenClipFramesKwargs) -> _Source:
    """Config, weights file and preprocessing of the open_clip model that ``kw`` names (local only)."""
    if is_bundle(kw.model) and kw.pretrained is not None:
        raise EncoderError(
            f"open_clip `model` {kw.model!r} brings its own weights; leave `pretrained` empty "
            f"(got {kw.pretrained!r}) or give `model` as a config name"
        )
    bundle_source = kw.model if is_bundle(kw.model) else kw.pretrained if is_bundle(kw.pretrained) else None
    if isinstance(bundle_source, str):
        bundle = resolve_bundle(bundle_source, kw.cache_dir)
        cfg = _validate_cfg(bundle.model_cfg, f"the config of {bundle.source}")
        if kw.model is not None and not is_bundle(kw.model):
            own, _ = _model_config(kw.model)
            if own != cfg:
                logger.warning(
                    "open_clip model %r replaced by the architecture of %s (its weights need it)",
                    kw.model if isinstance(kw.model, str) else "<inline config>",
                    bundle.source,
                )
        pre = bundle.preprocess_cfg
        mean, std = pre.get("mean"), pre.get("std")
        return _Source(
            cfg,
            bundle.weights,
            _triple(mean),
            _triple(std),
            _tokenizer_for(cfg, None),
            bundle.source,
        )
    assert kw.model is not None  # checked by OpenClipFramesKwargs
    cfg, name = _model_config(kw.model)
    tokenizer = _tokenizer_for(cfg, name)
    origin = name or "inline config"
    if kw.pretrained is None:
        return _Source(cfg, None, None, None, tokenizer, f"{origin}, random init")
    path = Path(kw.pretrained).expanduser()
    if path.is_file():
        return _Source(cfg, path, None, None, tokenizer, str(path))
    if name is not None:
        import open_clip

        tag_cfg: dict[str, Any] = open_clip.get_pretrained_cfg(name, kw.pretrained)
        if tag_cfg:
            weights = _tag_weights(name, kw.pretrained, tag_cfg, kw.cache_dir)
            if tag_cfg.get("quick_gelu"):
                cfg["quick_gelu"] = True
            mean, std = tag_cfg.get("mean"), tag_cfg.get("std")
            return _Source(
                cfg,
                weights,
                _triple(mean),
                _triple(std),
                tokenizer,
                f"open_clip {name}/{kw.pretrained}",
            )
    if kw.pretrained.endswith(_WEIGHT_SUFFIXES) or os.sep in kw.pretrained:
        raise WeightsUnavailableError(
            f"open_clip weights file '{path}' does not exist; download the weights there or fix `pretrained`"
        )
    tags: list[str] = []
    if name is not None:
        import open_clip

        tags = list(open_clip.list_pretrained_tags_by_model(name))
    raise EncoderError(
        f"`pretrained` {kw.pretrained!r} is neither a file nor an open_clip tag of {origin!r} "
        f"(tags: {tags}); aliases: {sorted(ALIASES)}; or hf-hub:org/repo"
    )


def _local_hf_folder(name: str, probe: str, cache_dir: str | None, what: str) -> str:
    """A local folder (or the given path) holding HF files for ``name``, so transformers never goes online."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    cache = hf_cache_dir(cache_dir)
    found = cached_hub_file(name, probe, cache)
    if found is None:
        raise WeightsUnavailableError(
            f"The {what} {name!r} of this open_clip model is not in the local Hugging Face cache '{cache}' "
            f"(nothing is downloaded). On a machine with internet access run `hf download {name} --cache-dir {cache}` "
            "and copy the folder here"
        )
    return str(found.parent)


def _instantiate(cfg: dict[str, Any], cache_dir: str | None) -> Any:
    """An open_clip CLIP / CustomTextCLIP built from ``cfg`` with random weights, fp32, on the CPU."""
    import open_clip

    cfg = copy.deepcopy(cfg)
    custom_text = bool(cfg.pop("custom_text", False)) or "hf_model_name" in cfg["text_cfg"]
    if "hf_model_name" in cfg["text_cfg"]:
        cfg["text_cfg"]["hf_model_name"] = _local_hf_folder(
            cfg["text_cfg"]["hf_model_name"], "config.json", cache_dir, "Hugging Face text model"
        )
    cls = open_clip.CustomTextCLIP if custom_text else open_clip.CLIP
    try:
        return cls(**cfg)
    except TypeError as e:
        raise EncoderError(f"open_clip model config does not fit {cls.__name__}: {e}") from e


def _spec_cfg(cfg: dict[str, Any]) -> dict[str, Any]:
    """The config as stored in the resolved spec: no pretrained sub-tower downloads on rebuild."""
    cfg = copy.deepcopy(cfg)
    if "timm_model_name" in cfg["vision_cfg"]:
        cfg["vision_cfg"]["timm_model_pretrained"] = False
    if "hf_model_name" in cfg["text_cfg"]:
        cfg["text_cfg"]["hf_model_pretrained"] = False
    return cfg


def _image_size(cfg: dict[str, Any]) -> int | None:
    size = cfg["vision_cfg"].get("image_size")
    if isinstance(size, (list, tuple)):
        if len(size) != 2 or size[0] != size[1]:
            raise EncoderError(f"open_clip image size {size} is not square; echo frames are square")
        size = size[0]
    return int(size) if size else None


class OpenClipFrameTower(VideoTower):
    """An open_clip image tower applied per frame; frame embeddings L2-normalised and averaged.

    Input (B, 3, T, S, S) float32 normalised, any 1 <= T <= frames, S = the model's image size.
    Both outputs: (B, embed_dim), the mean of unit-norm frame embeddings (not itself unit-norm).
    """

    variable_frames = True

    def __init__(self, visual: nn.Module, *, embed_dim: int, freeze: bool = False) -> None:
        super().__init__()
        self.visual = visual
        self.embed_dim = embed_dim
        self.feature_dim = embed_dim
        self.frozen = freeze
        if freeze:
            self.visual.requires_grad_(False)

    def train(self, mode: bool = True) -> OpenClipFrameTower:
        """Set training mode; a frozen image tower stays in eval mode."""
        super().train(mode)
        if self.frozen:
            self.visual.eval()
        return self

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 3, T, S, S) -> embedding (B, embed_dim), features (B, embed_dim) (the same tensor)."""
        b, c, t, h, w = x.shape
        frames: Tensor = self.visual(x.transpose(1, 2).reshape(b * t, c, h, w))
        emb = F.normalize(frames.float(), dim=-1).view(b, t, -1).mean(dim=1)
        return emb, emb


class OpenClipTextTower(TextTower):
    """The text encoder of an open_clip model and its tokenizer.

    Tokens: ``input_ids`` (B, context_length) int64. Output: (B, embed_dim), not normalised.
    """

    def __init__(self, model: nn.Module, tokenizer: Any, *, embed_dim: int, freeze: bool = False) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.embed_dim = embed_dim
        self.frozen = freeze
        if freeze:
            self.model.requires_grad_(False)

    def train(self, mode: bool = True) -> OpenClipTextTower:
        """Set training mode; a frozen text tower stays in eval mode."""
        super().train(mode)
        if self.frozen:
            self.model.eval()
        return self

    def tokenize(self, texts: list[str]) -> TextTokens:
        """``input_ids`` (B, context_length) int64 on the CPU."""
        ids: Tensor = self.tokenizer(texts)
        return {"input_ids": ids}

    def forward(self, tokens: TextTokens) -> Tensor:
        """Tokens -> (B, embed_dim) float32, not normalised."""
        out: Tensor = self.model.encode_text(tokens["input_ids"])  # type: ignore[operator]
        return out.float()


def make_tokenizer(name: str, context_length: int, cache_dir: str | None = None) -> Any:
    """An open_clip tokenizer from a ``preprocessing.tokenizer`` value (see :class:`Preprocessing`).

    Raises:
        EncoderError: the value names no open_clip tokenizer.
        WeightsUnavailableError: a Hugging Face tokenizer is not in the local cache.
    """
    import open_clip

    if name == "open_clip:simple":
        return open_clip.SimpleTokenizer(context_length=context_length)
    if name.startswith("open_clip:hf:"):
        from open_clip.tokenizer import HFTokenizer

        hf_name = name.removeprefix("open_clip:hf:")
        folder = _local_hf_folder(hf_name, "tokenizer_config.json", cache_dir, "Hugging Face tokenizer")
        return HFTokenizer(folder, context_length=context_length, local_files_only=True)
    model_name = name.removeprefix("open_clip:")
    if name.startswith("open_clip:") and model_name in open_clip.list_models():
        try:
            return open_clip.get_tokenizer(model_name, context_length=context_length)
        except OSError as e:
            raise WeightsUnavailableError(
                f"The tokenizer of open_clip model {model_name!r} needs files that are not available offline: {e}"
            ) from e
    raise EncoderError(
        f"preprocessing.tokenizer {name!r} is not an open_clip tokenizer; use 'open_clip' (the model's own), "
        "'open_clip:simple', 'open_clip:hf:<tokenizer>' or 'open_clip:<model config name>'"
    )


def build_video(ctx: BuildContext) -> OpenClipFrameTower:
    """Build the open_clip model once: image tower here, text part handed to :func:`build_text`."""
    import open_clip

    kw = OpenClipFramesKwargs.model_validate(ctx.video_kwargs)
    src = _resolve(kw)
    spec_cfg = _spec_cfg(src.cfg)  # sub-tower weights come from `weights` or stay random: never downloaded
    model = _instantiate(spec_cfg, kw.cache_dir)
    if src.weights is not None:
        try:
            open_clip.load_checkpoint(model, str(src.weights), strict=True, weights_only=True)
        except (RuntimeError, KeyError, ValueError, OSError, EOFError) as e:
            raise CheckpointError(
                f"open_clip weights '{src.weights}' do not fit the architecture of {src.origin!r}: {e}"
            ) from e
    reason = f"open_clip model {src.origin}"
    values: dict[str, Any] = {"max_length": int(src.cfg["text_cfg"].get("context_length", 77))}
    size = _image_size(src.cfg)
    if size is not None:
        values["size"] = size
    if ctx.preprocessing.tokenizer == OPEN_CLIP_TOKENIZER:
        values["tokenizer"] = src.tokenizer
    if src.mean is not None and src.std is not None:
        values["mean"] = tuple(round(255.0 * v, 6) for v in src.mean)
        values["std"] = tuple(round(255.0 * v, 6) for v in src.std)
    ctx.adopt(reason, embed_dim=int(src.cfg["embed_dim"]), **values)
    ctx.video_kwargs = {**kw.model_dump(mode="json"), "model": spec_cfg, "pretrained": None}
    ctx.video_kwargs["origin"] = kw.origin if kw.origin and src.weights is None else src.origin
    ctx.logit_scale = float(model.logit_scale.detach().float().reshape(-1)[0])
    visual = model.visual
    del model.visual
    del model.logit_scale
    if isinstance(getattr(model, "logit_bias", None), nn.Parameter):
        del model.logit_bias
    ctx.shared[_SHARED_KEY] = model
    return OpenClipFrameTower(visual, embed_dim=ctx.embed_dim, freeze=kw.freeze)


def build_text(ctx: BuildContext) -> OpenClipTextTower:
    """The text part of the open_clip model that :func:`build_video` built."""
    kw = OpenClipTextKwargs.model_validate(ctx.text_kwargs)
    model = ctx.shared.pop(_SHARED_KEY, None)
    if model is None:
        raise EncoderError("text tower 'open-clip-text' needs the video tower 'open-clip-frames' built first")
    video_kw = OpenClipFramesKwargs.model_validate(ctx.video_kwargs)
    tokenizer = make_tokenizer(ctx.preprocessing.tokenizer, ctx.preprocessing.max_length, video_kw.cache_dir)
    return OpenClipTextTower(model, tokenizer, embed_dim=ctx.embed_dim, freeze=kw.freeze)


def reference_model(cfg: dict[str, Any]) -> Any:
    """A plain open_clip model built from ``cfg`` (random weights), e.g. to compare outputs in tests."""
    return _instantiate(_spec_cfg(_validate_cfg(cfg, "cfg")), None)
