"""A small ingested simulated archive for the training tests (as tests/encoders/conftest.py builds one)."""

from __future__ import annotations

import pytest

from rag.core.config import RagConfig, load_config
from rag.ingest.pipeline import ingest
from rag.simulate.archive import SimulationOptions, simulate_archive


@pytest.fixture(scope="session")
def ingested_archive(tmp_path_factory: pytest.TempPathFactory) -> RagConfig:
    """4 simulated patients, ingested with the tiny encoder's clip size into a fresh workspace."""
    root = tmp_path_factory.mktemp("train")
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
