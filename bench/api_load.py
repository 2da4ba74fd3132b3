"""Load test of the HTTP service on loopback: similar-case queries and drafts at 1, 8 and 32 clients.

    RAG_HOME=<workspace> python bench/api_load.py [--requests 200] [--drafts 0.1] [--clients 1 8 32]

Starts the service (uvicorn, one worker, 127.0.0.1, a free port) on the workspace, creates a read key,
and for each concurrency level sends a bounded number of requests from that many async clients: similar
cases of random stored studies (with a draft instead for ``--drafts`` of them). Prints p50 / p99
latency and errors per level and checks that the audit log gained a row for every case read.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import sqlite3
import statistics
import threading
import time
from typing import Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _level(base: str, secret: str, studies: list[int], clients: int, n: int, drafts: float) -> dict[str, Any]:
    import httpx

    rng = random.Random(clients)
    jobs = [(rng.choice(studies), rng.random() < drafts) for _ in range(n)]
    times: dict[str, list[float]] = {"similar": [], "draft": []}
    errors: list[str] = []
    reads = 0
    queue: asyncio.Queue[tuple[int, bool]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal reads
        while not queue.empty():
            study, is_draft = queue.get_nowait()
            t0 = time.perf_counter()
            if is_draft:
                r = await client.post(f"/cases/{study}/draft")
            else:
                r = await client.get(f"/cases/{study}/similar", params={"k": 10})
            times["draft" if is_draft else "similar"].append(time.perf_counter() - t0)
            if r.status_code != 200:
                errors.append(f"{r.status_code} {r.text[:80]}")
            elif not is_draft:
                reads += 1 + len(r.json()["cases"])
            else:
                reads += 1 + len({n["study_id"] for n in r.json()["neighbours"]})

    headers = {"Authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        wall = time.perf_counter() - t0
    out: dict[str, Any] = {"clients": clients, "requests": n, "errors": errors, "wall": wall, "reads": reads}
    for kind, values in times.items():
        if values:
            values.sort()
            out[kind] = (statistics.median(values), values[min(len(values) - 1, int(0.99 * len(values)))], len(values))
    return out


def main() -> None:
    import uvicorn

    from rag.core.config import load_config
    from rag.store import open_store
    from rag.store.access import create_key
    from services.api.app import create_app

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per concurrency level")
    parser.add_argument("--drafts", type=float, default=0.1, help="share of requests that are drafts")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (rag-api --workers)")
    args = parser.parse_args()

    cfg = load_config()
    store = open_store(cfg.db_url)
    _, secret = create_key(store, f"load-{int(time.time())}", ["read"])
    app = create_app(cfg, rate=1e6, burst=1e6)  # the limiter would otherwise be what this measures
    studies = sorted(int(s) for s in app.state.workspace.drafter.retriever.studies.study_ids)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = None
    if args.workers > 1:  # separate processes, as `rag-api --workers N` runs them
        import os
        import subprocess
        import sys

        import httpx

        env = dict(os.environ, RAG_API_RATE="1000000")
        command = [sys.executable, "-m", "services.api.main", "--port", str(port), "--workers", str(args.workers)]
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(600):
            try:
                if httpx.get(f"{base}/ready", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        server = None
    else:
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
    db = cfg.db_url.removeprefix("sqlite:///")
    print(
        f"{len(studies)} studies; {args.requests} requests per level, {args.drafts:.0%} drafts; "
        f"{args.workers} worker process(es); {base}"
    )
    heads = ("clients", "similar p50", "p99", "draft p50", "p99", "req/s", "errors")
    print(" ".join(f"{h:>{w}}" for h, w in zip(heads, (8, 12, 8, 10, 8, 7, 7), strict=True)) + " audit")
    try:
        asyncio.run(_level(base, secret, studies, 1, 5, 0.2))  # warm-up: indexes, encoder, first draft
        for clients in args.clients:
            before = _audit_count(db)
            r = asyncio.run(_level(base, secret, studies, clients, args.requests, args.drafts))
            gained = _audit_count(db) - before
            s = r.get("similar", (float("nan"),) * 3)
            d = r.get("draft", (float("nan"),) * 3)
            print(
                f"{clients:>8} {1000 * s[0]:>10.1f}ms {1000 * s[1]:>6.1f}ms {1000 * d[0]:>8.1f}ms "
                f"{1000 * d[1]:>6.1f}ms {r['requests'] / r['wall']:>7.1f} {len(r['errors']):>7} "
                f"{gained}/{r['reads']} rows"
            )
            for e in r["errors"][:3]:
                print("   ", e)
    finally:
        if server is not None:
            server.should_exit = True
            thread.join(timeout=10)
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        store.close()


def _audit_count(db: str) -> int:
    con = sqlite3.connect(db)
    try:
        return int(con.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0])
    finally:
        con.close()


if __name__ == "__main__":
    main()
