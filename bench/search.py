"""Nearest-neighbour search: EchoPrime-style brute force against each FAISS index kind, side by side.

    python bench/search.py [--n 1230000] [--dim 512] [--queries 1000] [--hnsw-n 100000]
                           [--embeddings FOLDER --source clips]

Data: random but clustered L2-normalised vectors: ``--clusters`` gaussian clusters around unit centres,
each stretched along ``--rank`` random directions (local low-dimensional structure, as embeddings have)
plus isotropic noise; ``--rank 0`` gives plain isotropic clusters. Queries are new points drawn the same
way. The baseline is what EchoPrime does: a torch matmul of the query against the whole float32 matrix,
one query at a time and batched. Each index kind is built, saved, and measured: build time, bytes on
disk (what it holds in memory), single-query latency (p50/p99), queries/s one at a time and batched,
recall@10 against the exact answer, and cold start (a fresh Python process loading the saved index
memory-mapped and answering one query; the OS page cache may still hold the files just written). HNSW
and IVF are swept over efSearch / nprobe; the table shows each sweep point. The last line is
machine-readable:

    best=<index> speedup=<x> recall@10=<r> cold_start_s=<s>

``best`` is the fastest kind (single-query p50) with recall@10 >= 0.95 measured on the full data;
``speedup`` is brute force's single-query p50 divided by that kind's.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# OpenMP threads that spin while waiting stall badly when the cores are shared (FAISS's PQ training ran 8x
# slower on a busy 2-core machine); sleeping threads cost little here. Set before FAISS or torch load.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
K = 10
TARGET_RECALL = 0.95


@dataclass
class Row:
    name: str
    n: int
    build_s: float
    nbytes: int
    p50_ms: float
    p99_ms: float
    qps_single: float
    qps_batch: float
    recall: float
    cold_s: float
    baseline_p50_ms: float

    @property
    def speedup(self) -> float:
        return self.baseline_p50_ms / self.p50_ms if self.p50_ms > 0 else float("nan")


@dataclass(frozen=True)
class Clusters:
    """Unit centres (c, dim) and, per cluster, ``rank`` random directions (c, rank, dim) it spreads along."""

    centres: np.ndarray
    directions: np.ndarray


def make_clusters(clusters: int, dim: int, rank: int, seed: int) -> Clusters:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    directions = rng.standard_normal((clusters, rank, dim)).astype(np.float32) / np.sqrt(dim)
    return Clusters(centres, directions)


def clustered(spec: Clusters, n: int, spread: float, noise: float, seed: int) -> np.ndarray:
    """(n, dim) float32, L2-normalised: per point a random cluster's centre, plus a gaussian step of norm about
    ``spread`` along that cluster's directions, plus isotropic gaussian noise of norm about ``noise``."""
    rng = np.random.default_rng(seed)
    n_clusters, rank, dim = spec.directions.shape
    label = rng.integers(0, n_clusters, n)
    order = np.argsort(label, kind="stable")
    bounds = np.searchsorted(label[order], np.arange(n_clusters + 1))
    out = np.empty((n, dim), dtype=np.float32)
    for c in range(n_clusters):
        rows = order[bounds[c] : bounds[c + 1]]
        if rows.size == 0:
            continue
        x = np.repeat(spec.centres[c][None, :], rows.size, axis=0)
        if rank:
            z = rng.standard_normal((rows.size, rank), dtype=np.float32) * np.float32(spread / np.sqrt(rank))
            x += z @ spec.directions[c]
        x += np.float32(noise / np.sqrt(dim)) * rng.standard_normal((rows.size, dim), dtype=np.float32)
        out[rows] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def brute_force(x: Any, queries: np.ndarray, single: int) -> tuple[np.ndarray, float, list[float]]:
    """EchoPrime-style search: torch matmul against the whole matrix.

    Returns: exact ids (q, K) as row numbers, batched seconds per query, single-query latencies (s).
    """
    import torch

    q = torch.from_numpy(queries)
    t0 = time.perf_counter()
    best_s = torch.full((q.shape[0], K), -float("inf"))
    best_i = torch.zeros((q.shape[0], K), dtype=torch.long)
    step = 200_000
    with torch.no_grad():
        for start in range(0, x.shape[0], step):
            sims = q @ x[start : start + step].T
            s, i = torch.topk(sims, min(K, sims.shape[1]), dim=1)
            cat_s = torch.cat([best_s, s], dim=1)
            cat_i = torch.cat([best_i, i + start], dim=1)
            top_s, pos = torch.topk(cat_s, K, dim=1)
            best_s, best_i = top_s, torch.gather(cat_i, 1, pos)
        batched = (time.perf_counter() - t0) / q.shape[0]
        lat = []
        for row in range(min(single, q.shape[0])):
            t = time.perf_counter()
            torch.topk(x @ q[row], K)
            lat.append(time.perf_counter() - t)
    return best_i.numpy(), batched, lat


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file() and p.name != "manifest.json")


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    hits = [len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits) / truth.shape[1])


COLD = """
import sys, time, json
t0 = time.perf_counter()
import numpy as np
from rag.index.store import load_index
t1 = time.perf_counter()
index, _ = load_index(sys.argv[1])
t2 = time.perf_counter()
q = np.load(sys.argv[2])
index.search(q[:1], 10)
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_query_s": t3 - t2}), flush=True)
"""

COLD_BRUTE = """
import sys, time, json
t0 = time.perf_counter()
import numpy as np, torch
t1 = time.perf_counter()
x = torch.from_numpy(np.load(sys.argv[1]))
t2 = time.perf_counter()
q = torch.from_numpy(np.load(sys.argv[2]))
torch.topk(x @ q[0], 10)
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_query_s": t3 - t2}), flush=True)
"""


def cold_start(code: str, *args: str) -> tuple[float, dict[str, float]]:
    """Seconds from starting a fresh Python process to its first answer (and the child's own split)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"cold-start process failed: {proc.stderr[-2000:]}")
    return wall, json.loads(proc.stdout.strip().splitlines()[-1])


def measure(
    index: Any, queries: np.ndarray, truth: np.ndarray, ids: np.ndarray, single: int, batch_queries: int = 0
) -> dict[str, float]:
    """Latency of single-query calls over the first ``single`` queries; throughput and recall@10 of one batched
    call over the first ``batch_queries`` (0: all)."""
    lat = []
    for row in range(min(single, queries.shape[0])):
        t = time.perf_counter()
        index.search(queries[row : row + 1], K)
        lat.append(time.perf_counter() - t)
    nb = batch_queries or queries.shape[0]
    t = time.perf_counter()
    _, found = index.search(queries[:nb], K)
    batch = time.perf_counter() - t
    truth_ids = ids[truth[:nb]]
    arr = np.asarray(lat)
    return {
        "p50_ms": float(np.percentile(arr, 50) * 1e3),
        "p99_ms": float(np.percentile(arr, 99) * 1e3),
        "qps_single": float(arr.size / arr.sum()),
        "qps_batch": float(nb / batch),
        "recall": recall_at(found, truth_ids),
    }


def run_kind(
    kind: str,
    x: np.ndarray,
    ids: np.ndarray,
    queries: np.ndarray,
    truth: np.ndarray,
    workdir: Path,
    *,
    single: int,
    baseline_ms: float,
    sweep: list[dict[str, Any]],
    params: dict[str, Any],
    label: str = "",
) -> list[Row]:
    from rag.index import build_index, manifest_for, save_index

    t = time.perf_counter()
    index = build_index(x, ids, kind=kind, **params)
    build_s = time.perf_counter() - t
    folder = workdir / f"{kind}{label}"
    manifest = manifest_for(index, name=kind, encoder="bench", checkpoint_sha256="0" * 64, source="clips")
    save_index(index, folder, manifest)
    nbytes = folder_bytes(folder)
    wall, split = cold_start(COLD, str(folder), str(workdir / "queries.npy"))
    print(
        f"  {kind}{label}: built in {build_s:.1f}s, {nbytes / 1e6:.0f} MB; cold start {wall:.2f}s "
        f"(import {split['import_s']:.2f}s, load {split['load_s']:.3f}s, first query {split['first_query_s']:.3f}s)",
        flush=True,
    )
    rows = []
    for point in sweep or [{}]:
        if point:
            index.set_search_params(**point)
        m = measure(index, queries, truth, ids, single, batch_queries=200 if kind == "flat" else 0)
        shown = ",".join(f"{k}={v}" for k, v in point.items())
        name = f"{kind}{label}" + (f" ({shown})" if shown else "")
        rows.append(
            Row(
                name,
                x.shape[0],
                build_s,
                nbytes,
                m["p50_ms"],
                m["p99_ms"],
                m["qps_single"],
                m["qps_batch"],
                m["recall"],
                wall,
                baseline_ms,
            )
        )
        print(f"    {name}: p50 {m['p50_ms']:.2f} ms, recall@10 {m['recall']:.3f}", flush=True)
    del index
    gc.collect()
    shutil.rmtree(folder, ignore_errors=True)
    return rows


def print_table(rows: list[Row]) -> None:
    head = (
        f"| {'method':34s} | {'n':>9s} | {'build s':>7s} | {'MB':>6s} | {'p50 ms':>7s} | {'p99 ms':>7s} | "
        f"{'q/s (1)':>8s} | {'q/s (batch)':>11s} | {'recall@10':>9s} | {'speed-up':>8s} | {'cold s':>6s} |"
    )
    print(head)
    print("|" + "|".join("-" * (len(c) + 0) for c in head.split("|")[1:-1]) + "|")
    for r in rows:
        print(
            f"| {r.name:34s} | {r.n:>9d} | {r.build_s:>7.1f} | {r.nbytes / 1e6:>6.0f} | {r.p50_ms:>7.2f} | "
            f"{r.p99_ms:>7.2f} | {r.qps_single:>8.1f} | {r.qps_batch:>11.1f} | {r.recall:>9.3f} | "
            f"{r.speedup:>7.1f}x | {r.cold_s:>6.2f} |"
        )


def bench_data(
    x: np.ndarray, queries: np.ndarray, args: argparse.Namespace, workdir: Path, tag: str
) -> tuple[list[Row], float]:
    import torch

    n = x.shape[0]
    ids = np.arange(n, dtype=np.int64) * 3 + 1  # sparse, non-contiguous IDs like store rows
    np.save(workdir / "queries.npy", queries)
    print(f"[{tag}] exact answers by brute force (torch matmul, batched) ...", flush=True)
    xt = torch.from_numpy(x)
    truth, batched_s, lat = brute_force(xt, queries, args.single)
    base_p50 = float(np.percentile(lat, 50) * 1e3)
    np.save(workdir / "vectors.npy", x)
    wall, split = cold_start(COLD_BRUTE, str(workdir / "vectors.npy"), str(workdir / "queries.npy"))
    (workdir / "vectors.npy").unlink()
    lat_arr = np.asarray(lat)
    rows = [
        Row(
            "brute force, torch (1 query)",
            n,
            0.0,
            x.nbytes,
            base_p50,
            float(np.percentile(lat_arr, 99) * 1e3),
            float(lat_arr.size / lat_arr.sum()),
            1.0 / batched_s,
            1.0,
            wall,
            base_p50,
        ),
    ]
    print(
        f"  brute force: p50 {base_p50:.1f} ms/query one at a time, {batched_s * 1e3:.2f} ms/query batched; "
        f"cold start {wall:.2f}s (load {split['load_s']:.2f}s)",
        flush=True,
    )
    kinds = args.kinds.split(",")
    sweeps: dict[str, list[dict[str, Any]]] = {
        "flat": [],
        "hnsw": [{"ef_search": e} for e in (32, 64, 128, 256)],
        "ivf_flat": [{"nprobe": p} for p in (8, 16, 32, 64)],
        "ivf_pq": [{"nprobe": p} for p in (8, 16, 32, 64)],
    }
    for kind in kinds:
        print(f"[{tag}] {kind} ...", flush=True)
        if kind == "hnsw" and args.hnsw_n and args.hnsw_n < n:
            # An HNSW build of the full set does not fit the time budget here: build and measure on a subset,
            # against brute force and exact answers on that same subset.
            sub = x[: args.hnsw_n]
            sub_truth, _, sub_lat = brute_force(torch.from_numpy(sub), queries, args.single)
            sub_base = float(np.percentile(sub_lat, 50) * 1e3)
            rows.append(
                Row(
                    "brute force, torch (1 query)",
                    sub.shape[0],
                    0.0,
                    sub.nbytes,
                    sub_base,
                    float(np.percentile(sub_lat, 99) * 1e3),
                    float(len(sub_lat) / sum(sub_lat)),
                    0.0,
                    1.0,
                    float("nan"),
                    sub_base,
                )
            )
            rows += run_kind(
                kind,
                sub,
                ids[: sub.shape[0]],
                queries,
                sub_truth,
                workdir,
                single=args.queries,
                baseline_ms=sub_base,
                sweep=sweeps[kind],
                params={},
                label=" (subset)",
            )
            continue
        single = args.single if kind == "flat" else args.queries
        rows += run_kind(
            kind, x, ids, queries, truth, workdir, single=single, baseline_ms=base_p50, sweep=sweeps[kind], params={}
        )
    return rows, base_p50


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_230_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--clusters", type=int, default=2000)
    ap.add_argument("--rank", type=int, default=16, help="Directions each cluster spreads along (0: isotropic).")
    ap.add_argument("--spread", type=float, default=1.0, help="Norm of the step along a cluster's directions.")
    ap.add_argument("--noise", type=float, default=0.2, help="Norm of the isotropic noise (centres have norm 1).")
    ap.add_argument("--single", type=int, default=50, help="Queries timed one at a time for brute force and flat.")
    ap.add_argument("--hnsw-n", type=int, default=100_000, help="Build HNSW on this many vectors (0: all).")
    ap.add_argument("--kinds", default="flat,hnsw,ivf_flat,ivf_pq")
    ap.add_argument("--embeddings", type=Path, help="Also run on real vectors from a `rag embed` folder.")
    ap.add_argument("--source", default="clips")
    ap.add_argument("--workdir", type=Path, help="Scratch folder (default: a temporary one, removed after).")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import faiss
    import torch

    print(
        f"faiss {faiss.__version__} (omp threads {faiss.omp_get_max_threads()}), torch {torch.__version__} "
        f"(threads {torch.get_num_threads()}), cpus {os.cpu_count()}",
        flush=True,
    )
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-search-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        t = time.perf_counter()
        spec = make_clusters(args.clusters, args.dim, args.rank, args.seed)
        x = clustered(spec, args.n, args.spread, args.noise, args.seed + 1)
        queries = clustered(spec, args.queries, args.spread, args.noise, args.seed + 2)  # new points, same clusters
        print(
            f"data: {args.n} x {args.dim} float32 ({x.nbytes / 1e9:.2f} GB), {args.clusters} clusters "
            f"(rank {args.rank}, spread {args.spread}, noise {args.noise}), {args.queries} queries, "
            f"made in {time.perf_counter() - t:.1f}s",
            flush=True,
        )
        rows, _ = bench_data(x, queries, args, workdir, "synthetic")
        del x
        gc.collect()
        print()
        print_table(rows)
        if args.embeddings:
            from rag.encoders.embed import load_embeddings

            emb = load_embeddings(args.embeddings, args.source)
            real = np.ascontiguousarray(emb.vectors, dtype=np.float32)
            rng = np.random.default_rng(args.seed)
            pick = rng.choice(real.shape[0], min(args.queries, real.shape[0]), replace=False)
            print(f"\nreal embeddings: {args.embeddings} ({args.source}: {real.shape[0]} x {real.shape[1]})")
            real_rows, _ = bench_data(real, real[pick].copy(), args, workdir, "embeddings")
            print()
            print_table(real_rows)
        full = [r for r in rows if r.n == args.n and not r.name.startswith("brute") and r.recall >= TARGET_RECALL]
        print(f"\ntotal {time.perf_counter() - started:.0f}s")
        if full:
            best = max(full, key=lambda r: r.speedup)
            print(
                f"best={best.name.replace(' ', '')} speedup={best.speedup:.1f} recall@10={best.recall:.3f} "
                f"cold_start_s={best.cold_s:.2f}"
            )
        else:
            print("best=none speedup=0 recall@10=0 cold_start_s=nan")
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
