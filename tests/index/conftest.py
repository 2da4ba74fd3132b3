"""Fixtures of the index tests."""

from __future__ import annotations

import pytest

from tests.index._data import Data, clustered


@pytest.fixture(scope="session")
def data() -> Data:
    """4,000 vectors of 32 dimensions in 40 clusters, and 40 queries near them."""
    return clustered(4000, 32, clusters=40, q=40, seed=7)


@pytest.fixture(scope="session", autouse=True)
def _one_faiss_thread() -> None:
    """Tiny indexes gain nothing from OpenMP threads, and spinning threads stall on a busy 2-core machine."""
    import faiss

    faiss.omp_set_num_threads(1)
