"""Where a training epoch's time goes: the data path (clip files decoded per step vs the memory-mapped
uint8 cache) and one optimisation step of each video tower, side by side on the same stored clips.

    RAG_HOME=<workspace> python bench/train_data.py [--clips 256] [--encoders echo-video-grid,echo-video-tiny]

Reads the workspace's stored clips (ingest an archive first). Prints clips/second of each data path
and of each tower's forward + backward pass, the ratio cached / files, and an epoch estimate for the
workspace's clip count; the last line is machine-readable.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def _drain(loader: object) -> int:
    n = 0
    for video, _ in loader:  # type: ignore[attr-defined]
        n += int(video.shape[0])
    return n


def main() -> None:
    import torch

    from rag.core.config import load_config
    from rag.encoders import create
    from rag.store import open_store
    from rag.train.cache import build_clip_cache
    from rag.train.data import clip_loader, load_items

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=256)
    ap.add_argument("--encoders", default="echo-video-grid,echo-video-tiny")
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    cfg = load_config()
    store = open_store(cfg.db_url)
    try:
        every = load_items(store, cfg.media_dir, create(args.encoders.split(",")[0]).spec.view_classes)
    finally:
        store.close()
    if not every:
        raise SystemExit(f"no stored clips in {cfg.home}: ingest an archive first")
    items = every[: args.clips]
    print(f"torch {torch.__version__}, threads={torch.get_num_threads()}; {len(items)} of {len(every)} stored clips")
    figures: dict[str, float] = {}
    for name in args.encoders.split(","):
        model = create(name)
        pre = model.spec.preprocessing
        t0 = time.perf_counter()
        n = _drain(clip_loader(items, model, args.batch, shuffle=True, workers=0, seed=0, augment=True))
        files = n / (time.perf_counter() - t0)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            cache = build_clip_cache([(it.clip_id, it.path) for it in items], pre, Path(tmp))
            build = time.perf_counter() - t0
            t0 = time.perf_counter()
            n = _drain(
                clip_loader(items, model, args.batch, shuffle=True, workers=0, seed=0, augment=True, cache=cache)
            )
            cached = n / (time.perf_counter() - t0)
        x = torch.randn(args.batch, 3, pre.frames, pre.size, pre.size)
        optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)
        model.train()
        loss = model.encode_video(x).pow(2).sum()
        loss.backward()  # warm-up
        t0 = time.perf_counter()
        for _ in range(3):
            optimiser.zero_grad()
            model.encode_video(x).pow(2).sum().backward()
            optimiser.step()
        step = 3 * args.batch / (time.perf_counter() - t0)
        epoch_files = len(every) * (1 / files + 1 / step)
        epoch_cached = len(every) * (1 / cached + 1 / step)
        print(
            f"{name:16s} {pre.frames}x{pre.size}px: files {files:7.1f} clips/s, cache {cached:8.1f} clips/s "
            f"({cached / files:5.1f}x; built at {len(items) / build:6.1f} clips/s), train step {step:6.1f} clips/s; "
            f"epoch of {len(every)} clips ~{epoch_files:5.0f} s from files, ~{epoch_cached:5.0f} s from the cache"
        )
        figures[f"{name}/files"] = files
        figures[f"{name}/cache"] = cached
        figures[f"{name}/step"] = step
    print(" ".join(f"{k}={v:.1f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
