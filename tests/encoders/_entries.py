"""Helpers of the encoder tests: user registry entries and a tiny open_clip architecture."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

TINY_OPEN_CLIP_CFG: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}
"""A ViT-style open_clip model small enough to build and run in milliseconds."""

CLIP_MEAN = [122.7709383, 116.7460125, 104.09373615]
CLIP_STD = [68.5005327, 66.6321579, 70.32316305]


def tiny_open_clip_entry(
    name: str, *, model: Any = None, pretrained: str | None = None, **video: Any
) -> dict[str, Any]:
    """A registry entry of the tiny open_clip model (inline config unless ``model`` is given)."""
    return {
        "name": name,
        "description": "tiny open_clip model for tests",
        "embed_dim": 32,
        "video": {
            "architecture": "open-clip-frames",
            "kwargs": {"model": TINY_OPEN_CLIP_CFG if model is None else model, "pretrained": pretrained, **video},
        },
        "text": {"architecture": "open-clip-text", "kwargs": {}},
        "preprocessing": {
            "frames": 4,
            "stride": 2,
            "target_fps": 30.0,
            "size": 64,
            "mean": CLIP_MEAN,
            "std": CLIP_STD,
            "tokenizer": "open_clip",
            "max_length": 16,
        },
    }


def write_entry(folder: Path, entry: dict[str, Any]) -> Path:
    """Write ``entry`` as ``<folder>/<name>.yaml``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{entry['name']}.yaml"
    path.write_text(yaml.safe_dump(entry, sort_keys=False), encoding="utf-8")
    return path


def fake_hub_cache(cache: Path, repo_id: str, files: dict[str, bytes], commit: str = "0" * 40) -> Path:
    """Lay out ``files`` as the Hugging Face cache does for ``repo_id`` (main revision); returns the snapshot."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    for name, data in files.items():
        (snapshot / name).write_bytes(data)
    return snapshot
