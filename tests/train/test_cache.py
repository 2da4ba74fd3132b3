"""The training clip cache: clips decoded once as the encoder reads them, reused, bad clips named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import rag.encoders as enc
from rag.core.config import RagConfig
from rag.core.errors import RagError
from rag.encoders.preprocess import clip_pixels
from rag.store import open_store
from rag.train.cache import build_clip_cache, cached_batches
from rag.train.data import clip_loader, load_items


def test_clip_pixels_is_what_clip_to_tensor_reads() -> None:
    pre = enc.get_spec("echo-video-grid").preprocessing
    rng = np.random.default_rng(0)
    for shape in [(20, 112, 112, 1), (5, 64, 64, 3), (16, 96, 96, 3)]:
        clip = rng.integers(0, 256, shape, dtype=np.uint8)
        cached = clip_pixels(clip, pre)
        assert cached.shape == (pre.frames, pre.size, pre.size, 3) and cached.dtype == np.uint8
        direct = enc.clip_to_tensor(clip, pre)  # (3, T, S, S) normalised
        from_cache = torch.from_numpy(cached).permute(3, 0, 1, 2).float()
        mean = torch.tensor(pre.mean).view(3, 1, 1, 1)
        std = torch.tensor(pre.std).view(3, 1, 1, 1)
        assert torch.allclose((from_cache - mean) / std, direct, atol=0.51 / min(pre.std))  # uint8 rounding only


def test_cache_serves_the_loader_batches_is_reused_and_names_unreadable_clips(
    ingested_archive: RagConfig, tmp_path: Path
) -> None:
    model = enc.create("echo-video-grid")
    pre = model.spec.preprocessing
    store = open_store(ingested_archive.db_url)
    try:
        items = load_items(store, ingested_archive.media_dir, model.spec.view_classes)
    finally:
        store.close()
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a clip")
    pairs = [(it.clip_id, it.path) for it in items] + [(10**9, broken)]
    cache = build_clip_cache(pairs, pre, tmp_path / "cache")
    assert set(cache.skipped) == {10**9} and "broken.npz" in cache.skipped[10**9]
    assert len(cache.row_of) == len(items) and cache.pixels.dtype == np.uint8
    assert cache.built
    again = build_clip_cache(pairs, pre, tmp_path / "cache")
    assert not again.built and again.path == cache.path and again.skipped == cache.skipped  # opened, not rebuilt
    assert len(list((tmp_path / "cache").glob("clips-*.npy"))) == 1

    some = items[:5]
    from_files = torch.cat([v for v, _ in clip_loader(some, model, 2, shuffle=False, workers=0, seed=0)])
    from_cache = torch.cat([v for v, _ in clip_loader(some, model, 2, shuffle=False, workers=0, seed=0, cache=cache)])
    assert from_cache.shape == from_files.shape
    assert torch.allclose(from_cache, from_files, atol=0.51 / min(pre.std))
    shuffled = list(cached_batches(cache, [it.clip_id for it in some], pre, 2, shuffle=True, seed=3))
    assert sorted(int(i) for _, idx in shuffled for i in idx) == list(range(5))
    for video, idx in shuffled:  # each batch's positions say which item each row is
        for row, i in zip(video, idx, strict=True):
            assert torch.allclose(row, from_files[int(i)], atol=0.51 / min(pre.std))


def test_a_cache_of_no_readable_clip_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "x.npz"
    bad.write_bytes(b"junk")
    with pytest.raises(RagError, match="no clip could be read"):
        build_clip_cache([(1, bad)], enc.get_spec("echo-video-grid").preprocessing, tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*.npy"))
