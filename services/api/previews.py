"""Looping previews of clips: an animated GIF of each clip, encoded once and cached on disk."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import numpy as np

from rag.core.clipfile import read_clip

__all__ = ["Previews"]


class Previews:
    """``get(clip_id, rel_path)`` returns GIF bytes, from ``<cache>/<clip_id>.gif`` after the first time."""

    def __init__(self, media_dir: Path, cache: Path, size: int = 160) -> None:
        self.media_dir = media_dir.resolve()
        self.cache = cache
        self.size = size
        self._lock = threading.Lock()

    def get(self, clip_id: int, rel_path: str) -> bytes:
        """Raises: FileNotFoundError (no such clip file), ValueError (outside the media folder), DecodeError."""
        cached = self.cache / f"{int(clip_id)}.gif"
        if cached.is_file():
            return cached.read_bytes()
        path = (self.media_dir / rel_path).resolve()
        if not path.is_relative_to(self.media_dir):
            raise ValueError("clip path outside the media folder")
        if not path.is_file():
            raise FileNotFoundError(rel_path)
        from PIL import Image

        pixels, meta = read_clip(path)
        frames = []
        for frame in np.asarray(pixels):
            f = frame[..., 0] if frame.ndim == 3 and frame.shape[2] == 1 else frame
            image = Image.fromarray(np.ascontiguousarray(f))
            image.thumbnail((self.size, self.size))
            frames.append(image.convert("P", palette=Image.Palette.ADAPTIVE))
        fps = float(meta.get("fps") or 0)
        duration = int(1000 / fps) if fps > 0 else 60
        buf = io.BytesIO()
        frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], loop=0, duration=duration)
        data = buf.getvalue()
        with self._lock:
            self.cache.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            tmp.replace(cached)
        return data
