"""Embedding throughput: in-process against the Ray engine with 1 and 2 encoder actors.

    RAG_HOME=<workspace> python bench/embed_ray.py --checkpoint CKPT [--clips 512] [--workers 1 2]

Embeds the first N stored clips three ways side by side (the in-process loop of ``rag embed``, then
``rag embed --engine ray`` with each number of actors on a local Ray started for it) and prints clips/s
and the ratio to in-process. On a cluster, clips/s grows with the actors until decoding or storage
reads bound it; see docs/scale.md for the projection.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    from sqlalchemy import select

    from rag.core.config import load_config
    from rag.encoders import load_checkpoint
    from rag.encoders.distributed import embed_media_ray
    from rag.encoders.embed import _embed_media
    from rag.store import Clip, open_store

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--clips", type=int, default=512)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    cfg = load_config()
    store = open_store(cfg.db_url)
    with store.session() as s:
        rows = s.execute(select(Clip.id, Clip.path).order_by(Clip.id).limit(args.clips)).all()
    store.close()
    items = [(int(i), cfg.media_dir / p) for i, p in rows]
    model, _ = load_checkpoint(args.checkpoint)
    t0 = time.perf_counter()
    _embed_media(model, [p for _, p in items], args.batch_size, lambda _: None)
    local = len(items) / (time.perf_counter() - t0)
    print(f"{len(items)} clips, encoder {model.spec.name}, batch {args.batch_size}")
    print(f"{'engine':>14} {'clips/s':>9} {'vs in-process':>14}")
    print(f"{'in-process':>14} {local:>9.1f} {1.0:>13.2f}x")
    for workers in args.workers:
        parts = Path(tempfile.mkdtemp(prefix="ray-parts-"))
        try:
            t0 = time.perf_counter()
            embed_media_ray(
                items,
                args.checkpoint,
                parts,
                preprocessing=model.spec.preprocessing.model_dump(mode="json"),
                workers=workers,
                batch_size=args.batch_size,
            )
            rate = len(items) / (time.perf_counter() - t0)
        finally:
            shutil.rmtree(parts, ignore_errors=True)
        print(f"{'ray x' + str(workers):>14} {rate:>9.1f} {rate / local:>13.2f}x  (includes Ray start-up)")


if __name__ == "__main__":
    main()
