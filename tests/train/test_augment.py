"""Training-time augmentation on real stored clips."""

from __future__ import annotations

import numpy as np
import torch

from rag.core.clipfile import read_clip
from rag.core.config import RagConfig
from rag.encoders import create
from rag.encoders.preprocess import clip_to_tensor
from rag.store import Clip, open_store
from rag.train.augment import ClipAugment


def _stored_clip(cfg: RagConfig) -> np.ndarray:
    store = open_store(cfg.db_url)
    try:
        with store.session() as s:
            path = s.query(Clip.path).order_by(Clip.id).first()[0]  # type: ignore[index]
    finally:
        store.close()
    pixels, _ = read_clip(cfg.media_dir / path)
    return pixels


def test_augmentation_varies_acquisition_and_keeps_the_clip(ingested_archive: RagConfig) -> None:
    pre = create("echo-video-tiny").spec.preprocessing
    x = clip_to_tensor(_stored_clip(ingested_archive), pre)
    off = ClipAugment(gain=(1, 1), gamma=(1, 1), zoom=(1, 1), shift=0.0, rotation=0.0)
    assert torch.allclose(off(x, pre), x, atol=1e-3)  # no change drawn: the same clip

    aug = ClipAugment()
    a = aug(x, pre, torch.Generator().manual_seed(1))
    b = aug(x, pre, torch.Generator().manual_seed(1))
    c = aug(x, pre, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and torch.isfinite(a).all()
    assert torch.equal(a, b)  # seeded: reproducible
    assert not torch.allclose(a, c, atol=1e-2)  # a different draw is a different acquisition
    black = (0.0 - torch.tensor(pre.mean)) / torch.tensor(pre.std)
    assert torch.allclose(a[:, :, 0, 0], black[:, None].expand(3, a.shape[1]), atol=0.05)  # corners stay black
    # one draw per clip, shared by its frames: a still heart stays still, so motion is all that differs
    still = x[:, :1].expand_as(x).contiguous()
    moved = aug(still, pre, torch.Generator().manual_seed(3))
    assert torch.allclose(moved, moved[:, :1].expand_as(moved), atol=1e-5)
