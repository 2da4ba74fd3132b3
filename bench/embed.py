"""Embedding throughput per tower: clips/second on CPU (and CUDA when present), batch size swept.

    python bench/embed.py [--encoders echo-video-tiny,echoprime-mvit,echoclip] [--batches 1,8,32]

Random-weight towers (speed does not depend on the weights) on random clips already preprocessed to
each tower's input size; the last line is machine-readable.
"""

from __future__ import annotations

import argparse
import time


def bench(name: str, device: str, batch: int, repeats: int) -> float:
    import torch

    from rag.encoders import create

    model = create(name, device=device)
    pre = model.spec.preprocessing
    x = torch.randn(batch, 3, pre.frames, pre.size, pre.size, device=device)
    with torch.no_grad():
        model.encode_video(x)  # warm-up
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(repeats):
            model.encode_video(x)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    return batch * repeats / (time.perf_counter() - t0)


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoders", default="echo-video-tiny,echoprime-mvit,echoclip")
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, threads={torch.get_num_threads()}, devices={devices}")
    print(f"{'encoder':18s} {'device':6s} {'batch':>5s} {'clips/s':>9s}")
    best: dict[str, float] = {}
    for name in args.encoders.split(","):
        for device in devices:
            for b in (int(x) for x in args.batches.split(",")):
                if device == "cpu" and name != "echo-video-tiny" and b > 8:
                    continue  # minutes per point on 2 cores; the trend is clear by 8
                rate = bench(name, device, b, args.repeats)
                key = f"{name}/{device}"
                best[key] = max(best.get(key, 0.0), rate)
                print(f"{name:18s} {device:6s} {b:>5d} {rate:>9.2f}")
    print(" ".join(f"{k}={v:.2f}" for k, v in best.items()))


if __name__ == "__main__":
    main()
