"""Stored clip files: compressed ``.npz`` written atomically under the workspace's media folder.

A file is first written to a temporary name in the destination folder, flushed to disk, then renamed
over its final name, so a crash leaves either the whole file or nothing under the final name.
Temporary leftovers end in ``.tmp`` and are swept by :func:`sweep_orphans`.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from rag.core.errors import DecodeError

TMP_SUFFIX = ".tmp"


def relative_clip_path(kind: str, key: str) -> Path:
    """Where the item with storage key ``key`` lives, relative to the media folder."""
    return Path(kind) / key[:2] / f"{key}.npz"


def encode_clip(pixels: np.ndarray, meta: dict[str, Any]) -> bytes:
    """Serialise a clip.

    Args:
        pixels: (T, S, S, C) uint8, C = 1 (grayscale) or 3 (RGB).
        meta: JSON-serialisable metadata stored beside the pixels (no identifying values).
    """
    if pixels.dtype != np.uint8 or pixels.ndim != 4:
        raise ValueError(f"clip pixels must be (T, S, S, C) uint8, got {pixels.shape} {pixels.dtype}")
    buf = io.BytesIO()
    np.savez_compressed(buf, pixels=pixels, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    return buf.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` never holds a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_clip(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Load a stored clip.

    Returns:
        pixels (T, S, S, C) uint8 and its metadata.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            pixels = z["pixels"]
            meta = json.loads(z["meta"].tobytes().decode())
    except (OSError, ValueError, KeyError) as e:
        raise DecodeError(f"Stored clip '{path}' cannot be read ({e}); re-run `rag ingest` on its source.") from e
    return pixels, meta


def sweep_orphans(media_dir: Path, referenced: Iterable[str]) -> list[Path]:
    """Delete temporary files and clip files that no database row references.

    Args:
        media_dir: the media folder.
        referenced: paths relative to ``media_dir`` that rows reference.

    Returns:
        The deleted paths.
    """
    if not media_dir.is_dir():
        return []
    keep = {str(Path(p)) for p in referenced}
    removed: list[Path] = []
    for p in media_dir.rglob("*"):
        if not p.is_file():
            continue
        rel = str(p.relative_to(media_dir))
        if p.name.endswith(TMP_SUFFIX) or (p.suffix == ".npz" and rel not in keep):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed
