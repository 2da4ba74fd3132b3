"""Shared fixtures: real data location, an isolated workspace, and no outside network in unit tests."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rag.core.config import RagConfig, load_config

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
DICOM_DIR = SHARED_DATA / "dicom"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def shared_file(*parts: str) -> Path:
    """A file under ../shared/data, or skip the test with the reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real test data not available: {path} (needs ../shared/data beside the repository)")
    return path


@pytest.fixture
def dicom_dir() -> Path:
    """The folder of real DICOM files (skips when ../shared is absent)."""
    return shared_file("dicom")


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty workspace (RAG_HOME) with a fixed pseudonymisation key and no RAG_* leaking in."""
    for k in list(os.environ):
        if k.startswith("RAG_"):
            monkeypatch.delenv(k)
    home = tmp_path / "ws"
    home.mkdir()
    monkeypatch.setenv("RAG_HOME", str(home))
    monkeypatch.setenv("RAG_PSEUDONYM_KEY", "test-key-0123456789")
    monkeypatch.chdir(tmp_path)
    return home


_LOCAL = ("127.0.0.1", "::1", "localhost", "0.0.0.0")


@pytest.fixture(autouse=True)
def _refuse_outside_network(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Unit tests may only talk to loopback; integration tests are exempt."""
    if request.node.get_closest_marker("integration"):
        yield
        return
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and (host in _LOCAL or host.startswith("/") or self.family == socket.AF_UNIX):
            return real_connect(self, address)
        raise RuntimeError(f"unit test tried to reach {address!r}; mark it 'integration' or use a local fake")

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """A PostgreSQL server on 127.0.0.1 for this test session (integration tests only)."""
    from tests.pgserver import PostgresServer

    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def db_url(request: pytest.FixtureRequest, workspace: Path) -> str:
    """The case store URL: the workspace's SQLite file, and (integration) a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{workspace / 'rag.sqlite3'}"
    server = request.getfixturevalue("postgres_server")
    url: str = server.new_database()
    return url


KEY = "retrieve-tests-key"


@dataclass(frozen=True)
class EmbeddedArchive:
    """An ingested simulated archive, the embeddings folder of a fresh ``echo-video-tiny`` checkpoint and
    the case library built from them.

    The workspace has the default layout: ``<home>/checkpoints/last.pt``, ``<home>/embeddings/`` and
    ``<home>/indexes/library/``.
    """

    archive: Path
    config: RagConfig
    embeddings: Path
    checkpoint: Path


@pytest.fixture(scope="session")
def small_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 simulated patients at 64 px (session-wide): the folder that holds ``patients/``."""
    from rag.simulate.archive import SimulationOptions, simulate_archive

    root = tmp_path_factory.mktemp("archive") / "archive"
    simulate_archive(
        root,
        patients=3,
        seed=11,
        options=SimulationOptions(height=64, width=80, doppler_probability=0.7, mp4_probability=0.0),
    )
    return root


def embed_archive(archive: Path, home: Path, database_url: str | None = None) -> EmbeddedArchive:
    """Ingest ``archive`` into a workspace at ``home`` (its SQLite file, or the store at ``database_url``),
    embed it with an untrained ``echo-video-tiny`` and build the case library."""
    from rag.encoders import create, load_checkpoint, save_checkpoint
    from rag.encoders.embed import embed_store, embeddings_dir
    from rag.index.library import LIBRARY_DIR, CaseLibrary
    from rag.ingest.pipeline import ingest
    from rag.store import open_store

    cfg = load_config(home=home, database_url=database_url, pseudonym_key=KEY, ingest={"frames": 16, "size": 64})
    report = ingest([archive / "patients"], cfg)
    assert report.counts["skipped"] == 0
    ckpt = cfg.home / "checkpoints" / "last.pt"
    ckpt.parent.mkdir(parents=True)
    import torch

    torch.manual_seed(0)  # the same untrained weights whichever test opens the archive first
    save_checkpoint(create("echo-video-tiny"), ckpt)
    model, info = load_checkpoint(ckpt)
    store = open_store(cfg.db_url)
    folder = embeddings_dir(cfg.home / "embeddings", model.spec.name, info.sha256)
    try:
        embed_store(store, cfg.media_dir, cfg.home / "embeddings", model, info.sha256, batch_size=16)
        CaseLibrary.build(store, folder, cfg.indexes_dir / LIBRARY_DIR)
    finally:
        store.close()
    return EmbeddedArchive(archive, cfg, folder, ckpt)


@pytest.fixture(scope="session")
def embedded_archive(small_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> EmbeddedArchive:
    """The small archive ingested at 64 px, embedded with an untrained tiny encoder (session-wide)."""
    return embed_archive(small_archive, tmp_path_factory.mktemp("retrieve") / "ws")


@pytest.fixture(scope="session")
def ingested_archive(tmp_path_factory: pytest.TempPathFactory) -> RagConfig:
    """4 simulated patients, ingested with the tiny encoder's clip size into a fresh workspace."""
    from rag.ingest.pipeline import ingest
    from rag.simulate.archive import SimulationOptions, simulate_archive

    root = tmp_path_factory.mktemp("enc")
    simulate_archive(
        root / "archive",
        patients=4,
        seed=3,
        options=SimulationOptions(height=128, width=160, doppler_probability=0.5, mp4_probability=0.0),
    )
    cfg = load_config(home=root / "ws", pseudonym_key="encoder-tests", ingest={"frames": 16, "size": 64})
    report = ingest([root / "archive" / "patients"], cfg)
    assert report.counts["skipped"] == 0
    return cfg
