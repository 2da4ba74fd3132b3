"""``rag-api --workers 2`` against PostgreSQL: a real server on loopback, a key made and revoked with the
command line while it runs, concurrent reads answered by both worker processes, every read audited once,
the revoked key refused by both."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from rag.core.config import RagConfig
from tests.conftest import KEY, embed_archive
from tests.pgserver import PostgresServer

pytestmark = pytest.mark.integration

WORKERS = 2
SAMPLE = re.compile(r'^rag_api_requests_total\{method="(\w+)",route="([^"]+)",status="(\d+)",pid="(\d+)"\} (\d+)$')


@dataclass(frozen=True)
class Server:
    url: str
    env: dict[str, str]
    log: Path


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def pg_workspace(small_archive: Path, postgres_server: PostgresServer, tmp_path: Path) -> RagConfig:
    """The service tests' small archive, ingested, embedded and indexed with its store in PostgreSQL."""
    url = postgres_server.new_database()
    return embed_archive(small_archive, tmp_path / "ws", database_url=url).config


@pytest.fixture
def server(pg_workspace: RagConfig, tmp_path: Path) -> Iterator[Server]:
    """``rag-api --workers 2`` on 127.0.0.1 over the PostgreSQL workspace; it and every process it
    started (its own session) are stopped afterwards."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env |= {
        "RAG_HOME": str(pg_workspace.home),
        "RAG_DATABASE_URL": pg_workspace.db_url,
        "RAG_PSEUDONYM_KEY": KEY,
        "RAG_INGEST__FRAMES": "16",
        "RAG_INGEST__SIZE": "64",
        "RAG_API_RATE": "1000",  # rate limits are not what this test is about
    }
    port = _port()
    log = tmp_path / "rag-api.log"
    api = Path(sys.executable).with_name("rag-api")
    cmd = [str(api)] if api.is_file() else [sys.executable, "-m", "services.api.main"]
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*cmd, "--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"rag-api exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/ready", timeout=30).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"rag-api was not ready within 60 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield Server(url, env, log)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the supervisor and its workers
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("rag-api's workers outlived it")


def _alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def _rag(server: Server, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "rag", *args], env=server.env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _get(server: Server, path: str, secret: str | None = None) -> httpx.Response:
    """One request on a connection of its own, so the workers share the requests between them."""
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return httpx.get(f"{server.url}{path}", headers=headers, timeout=60)


def _concurrently(server: Server, paths: list[str], secret: str) -> list[httpx.Response]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda p: _get(server, p, secret), paths))


def _per_worker(server: Server) -> dict[int, Counter[tuple[str, int]]]:
    """Every worker's answered requests by (route, status), read from ``/metrics`` (a scrape reaches one
    worker; scrape until each has been seen)."""
    seen: dict[int, Counter[tuple[str, int]]] = {}
    for _ in range(200):
        counts: Counter[tuple[str, int]] = Counter()
        pid = None
        for line in _get(server, "/metrics").text.splitlines():
            if m := SAMPLE.match(line):
                counts[(m[2], int(m[3]))] += int(m[5])
                pid = int(m[4])
        if pid is not None:
            seen[pid] = counts
        if len(seen) == WORKERS:
            return seen
    pytest.fail(f"/metrics showed {len(seen)} of {WORKERS} workers in 200 scrapes")


def _until_both_answer(
    server: Server, send: Callable[[], list[httpx.Response]], route: str, status: int
) -> list[httpx.Response]:
    """Send batches of concurrent requests until every worker has answered ``route`` with ``status``."""
    answers: list[httpx.Response] = []
    for _ in range(10):
        answers += send()
        workers = _per_worker(server)
        if all(c[(route, status)] > 0 for c in workers.values()):
            return answers
    pytest.fail(f"not every worker answered {route} with {status}: {workers}")


def test_two_workers_share_the_load_audit_every_read_and_refuse_a_revoked_key(
    server: Server, pg_workspace: RagConfig
) -> None:
    from sqlalchemy import func, select

    from rag.store import AuditEntry, Study, open_store

    secret = _rag(server, "keys", "create", "clinic", "--scope", "read").split(": ")[-1].strip()
    assert secret.startswith("rag_")
    store = open_store(pg_workspace.db_url)
    try:
        with store.session() as s:
            studies = sorted(s.scalars(select(Study.id)))
    finally:
        store.close()
    assert len(studies) >= 3

    # a few dozen concurrent reads, each on its own connection
    paths = [f"/cases/{s}/similar?k=3" for s in studies for _ in range(3)] * 2 + [f"/cases/{s}" for s in studies] * 2
    answers = _concurrently(server, paths, secret)
    failed = [(p, r.status_code, r.text[:200]) for p, r in zip(paths, answers, strict=True) if r.status_code != 200]
    assert not failed
    similar = [r.json() for r in answers if "/similar" in str(r.url)]
    reads = Counter(r.json()["study_id"] for r in answers if "/similar" not in str(r.url))
    assert all(answer["cases"] for answer in similar)

    workers = _per_worker(server)
    by_route = {pid: (c["/cases/{study_id}/similar", 200], c["/cases/{study_id}", 200]) for pid, c in workers.items()}
    assert all(n_similar + n_case > 0 for n_similar, n_case in by_route.values()), by_route  # both did work
    assert sum(n for n, _ in by_route.values()) == len(similar)
    assert sum(n for _, n in by_route.values()) == sum(reads.values())

    store = open_store(pg_workspace.db_url)
    try:
        with store.session() as s:
            rows = s.execute(
                select(AuditEntry.action, AuditEntry.study_id, func.count())
                .where(AuditEntry.key_name == "clinic")
                .group_by(AuditEntry.action, AuditEntry.study_id)
            ).all()
    finally:
        store.close()
    audited = {(a, sid): n for a, sid, n in rows}
    assert {sid: n for (a, sid), n in audited.items() if a == "read case"} == dict(reads)  # one row per read
    assert sum(n for (a, _), n in audited.items() if a == "similar cases") == sum(1 + len(x["cases"]) for x in similar)

    # revoked while the server runs: refused by every worker once their key cache (2 s) has run out
    _rag(server, "keys", "revoke", "clinic")
    time.sleep(2.5)
    study = studies[0]
    refused = _until_both_answer(
        server,
        lambda: _concurrently(server, [f"/cases/{study}"] * 8, secret),
        "/cases/{study_id}",
        401,
    )
    assert {r.status_code for r in refused} == {401}
    assert all(set(r.json()) == {"error"} and "revoked" in r.json()["error"] for r in refused)
