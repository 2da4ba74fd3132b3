"""A clip cache for training: every clip decoded once into a memory-mapped uint8 array.

Decompressing ``.npz`` clips and resizing them on every step is where CPU training time goes (about
5 min an epoch for 2,900 clips at 112 px on 2 cores). :func:`build_clip_cache` decodes each clip
once, exactly as the encoder's preprocessing reads it (:func:`rag.encoders.preprocess.clip_pixels`:
the first frames, looped when short, resized, uint8), into ``<folder>/clips-<n>x<T>x<S>-<digest>.npy``;
later runs on the same clips and preprocessing open it memory-mapped. :func:`cached_batches` then
serves shuffled, normalised (and optionally re-acquired) batches from it without decoding anything.

A clip that cannot be read is left out and named in :attr:`ClipCache.skipped`, with the reason; the
other clips train.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.core.clipfile import read_clip
from rag.core.errors import RagError

if TYPE_CHECKING:
    import torch

    from rag.encoders.spec import Preprocessing

__all__ = ["ClipCache", "build_clip_cache", "cached_batches"]

log = logging.getLogger(__name__)


@dataclass
class ClipCache:
    """Clips as (n, frames, size, size, 3) uint8, row ``row_of[clip_id]``; unreadable clips in ``skipped``."""

    pixels: np.ndarray
    row_of: dict[int, int]
    path: Path
    skipped: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0  # time spent building (0: opened)
    built: bool = False  # decoded now (False: an existing cache was opened)


def _digest(clips: Sequence[tuple[int, Path]], pre: Preprocessing) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([pre.frames, pre.size]).encode())
    for clip_id, path in clips:
        h.update(f"{clip_id}:{path}\n".encode())
    return h.hexdigest()[:12]


def build_clip_cache(
    clips: Sequence[tuple[int, Path]],
    pre: Preprocessing,
    folder: Path,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ClipCache:
    """Decode ``clips`` ((clip id, file) pairs) once into a memory-mapped cache in ``folder``, or open it.

    The file name carries a digest of the clip list and the preprocessing's frames and size, so a
    cache is reused only for the same clips read the same way; it is written under a temporary name
    and renamed when complete, so an interrupted build leaves no cache that looks whole.

    Raises:
        RagError: no clip could be read.
    """
    from rag.encoders.preprocess import clip_pixels

    folder.mkdir(parents=True, exist_ok=True)
    digest = _digest(clips, pre)
    path = folder / f"clips-{len(clips)}x{pre.frames}x{pre.size}-{digest}.npy"
    skipped_path = path.with_suffix(".skipped.json")
    if path.is_file():
        known = json.loads(skipped_path.read_text()) if skipped_path.is_file() else {}
        left_out = {int(k): str(v) for k, v in known.items()}
        kept = [c for c, _ in clips if c not in left_out]
        return ClipCache(np.load(path, mmap_mode="r"), {c: i for i, c in enumerate(kept)}, path, left_out)
    started = time.perf_counter()
    tmp = path.with_name(path.stem + ".tmp.npy")
    shape = (len(clips), pre.frames, pre.size, pre.size, 3)  # rows of unreadable clips stay unused at the end
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
    skipped: dict[int, str] = {}
    row = 0
    for n, (clip_id, file) in enumerate(clips):
        try:
            pixels, _meta = read_clip(file)
            out[row] = clip_pixels(pixels, pre)
            row += 1
        except Exception as e:  # one unreadable clip never ends the build
            skipped[clip_id] = f"{file}: {e}"
            log.warning("clip cache: left out clip %d (%s): %s", clip_id, file, e)
        if progress is not None:
            progress(n + 1, len(clips))
    if row == 0:
        del out
        tmp.unlink(missing_ok=True)
        first = next(iter(skipped.values()), "no clips given")
        raise RagError(f"no clip could be read for the training cache (first error: {first}); re-ingest the studies")
    out.flush()
    del out
    skipped_path.write_text(json.dumps({str(k): v for k, v in skipped.items()}, indent=1))
    tmp.replace(path)
    kept = [c for c, _ in clips if c not in skipped]
    cache = ClipCache(np.load(path, mmap_mode="r"), {c: i for i, c in enumerate(kept)}, path, skipped)
    cache.seconds = time.perf_counter() - started
    cache.built = True
    return cache


class CachedBatches:
    """Batches (video (B, 3, T, S, S) normalised float32, positions into ``rows``) from a :class:`ClipCache`."""

    def __init__(
        self,
        pixels: np.ndarray,
        rows: Sequence[int],
        pre: Preprocessing,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int,
        augment: bool = False,
    ) -> None:
        self.pixels = pixels
        self.rows = np.asarray(rows, dtype=np.int64)
        self.pre = pre
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.augment = augment

    def __len__(self) -> int:
        return (len(self.rows) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        import torch

        from rag.encoders.preprocess import normalise

        order = np.arange(len(self.rows))
        generator = torch.Generator()
        generator.manual_seed(self.seed)
        if self.shuffle:
            order = np.random.default_rng(self.seed).permutation(order)
        augment = None
        if self.augment:
            from rag.train.augment import ClipAugment

            augment = ClipAugment()
        for start in range(0, len(order), self.batch_size):
            positions = np.sort(order[start : start + self.batch_size])
            block = np.asarray(self.pixels[self.rows[positions]])
            x = normalise(torch.from_numpy(block).permute(0, 4, 1, 2, 3), self.pre)  # (B, 3, T, S, S)
            if augment is not None:
                x = torch.stack([augment(clip, self.pre, generator) for clip in x])
            yield x, torch.from_numpy(positions)


def cached_batches(
    cache: ClipCache,
    clip_ids: Sequence[int],
    pre: Preprocessing,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    augment: bool = False,
) -> CachedBatches:
    """Batches of the clips ``clip_ids`` (all in the cache) as a ``DataLoader`` of :func:`clip_loader` gives them."""
    return CachedBatches(
        cache.pixels, [cache.row_of[c] for c in clip_ids], pre, batch_size, shuffle=shuffle, seed=seed, augment=augment
    )
