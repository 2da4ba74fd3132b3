from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from rag.core.config import load_config
from rag.llm import ServerStartError, VLLMServer, resolve_venv
from rag.llm.server import detect_device, free_port


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _group_gone(pgid: int) -> bool:
    """No live (non-zombie) process of group ``pgid`` is left (read from /proc)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[2] == str(pgid) and fields[0] != "Z":
            return False
    return True


def test_missing_venv_says_to_run_setup(tmp_path: Path, model_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ServerStartError, match=r"services/vllm/setup\.sh") as e:
        resolve_venv(".venv-vllm", tmp_path / "ws")
    assert str(tmp_path / ".venv-vllm") in str(e.value) and str(tmp_path / "ws" / ".venv-vllm") in str(e.value)
    with pytest.raises(ServerStartError, match=r"services/vllm/setup\.sh"):
        VLLMServer(model_folder, venv=tmp_path / "nowhere").start()


def test_relative_venv_is_found_in_the_workspace(tmp_path: Path, fake_vllm_venv: Path) -> None:
    assert resolve_venv(fake_vllm_venv.name, fake_vllm_venv.parent) == fake_vllm_venv
    assert resolve_venv(fake_vllm_venv) == fake_vllm_venv
    assert detect_device(fake_vllm_venv) == "cpu"
    assert detect_device(tmp_path) == "gpu"


def test_missing_model_says_to_prepare(tmp_path: Path, fake_vllm_venv: Path) -> None:
    with pytest.raises(ServerStartError, match="rag llm prepare"):
        VLLMServer(tmp_path / "no-model", venv=fake_vllm_venv).start()


def test_bad_arguments_are_refused(model_folder: Path, fake_vllm_venv: Path) -> None:
    with pytest.raises(ServerStartError, match="port"):
        VLLMServer(model_folder, venv=fake_vllm_venv, port=70000)
    with pytest.raises(ServerStartError, match="startup_timeout"):
        VLLMServer(model_folder, venv=fake_vllm_venv, startup_timeout=0)
    with pytest.raises(ServerStartError, match="served_model_name"):
        VLLMServer(model_folder, venv=fake_vllm_venv, served_model_name="")


def test_command_line_on_cpu_and_gpu(model_folder: Path, fake_vllm_venv: Path) -> None:
    server = VLLMServer(model_folder, venv=fake_vllm_venv, served_model_name="m1", port=8123, max_model_len=2304)
    cmd = server.command()
    assert cmd[:3] == [str(fake_vllm_venv / "bin" / "python"), "-m", "vllm.entrypoints.openai.api_server"]
    for pair in (["--served-model-name", "m1"], ["--port", "8123"], ["--host", "127.0.0.1"], ["--dtype", "bfloat16"]):
        assert " ".join(pair) in " ".join(cmd)
    assert "--enforce-eager" in cmd and "--max-model-len" in cmd
    assert '"disable_any_whitespace": true' in cmd[cmd.index("--structured-outputs-config") + 1]
    gpu = VLLMServer(
        model_folder, venv=fake_vllm_venv, port=8123, device="gpu", api_key="k3y", compact_json=False
    ).command()
    assert "--enforce-eager" not in gpu and "--max-model-len" not in gpu and "k3y" not in " ".join(gpu)
    assert "--structured-outputs-config" not in gpu


def test_start_serve_stop_as_context_manager(tmp_path: Path, model_folder: Path, fake_vllm_venv: Path) -> None:
    log = tmp_path / "logs" / "vllm.log"
    server = VLLMServer(model_folder, venv=fake_vllm_venv, served_model_name="fake-m", log_path=log)
    with server:
        assert server.running and server.port is not None and server.startup_seconds is not None
        pgid = server.pid
        assert pgid is not None
        assert httpx.get(f"{server.base_url}/models", trust_env=False).json()["data"][0]["id"] == "fake-m"
        assert "kv=1" in log.read_text()  # the CPU environment was set
    assert not server.running and server.pid is None
    assert _group_gone(pgid)  # the API server and its engine child are both gone
    server.stop()  # idempotent


def test_busy_port_is_refused(model_folder: Path, fake_vllm_venv: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ServerStartError, match=f"Port {port}.*in use"):
            VLLMServer(model_folder, venv=fake_vllm_venv, port=port).start()


def test_server_that_dies_reports_status_and_log_tail(
    tmp_path: Path, model_folder: Path, fake_vllm_venv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_VLLM_MODE", "die")
    server = VLLMServer(model_folder, venv=fake_vllm_venv, log_path=tmp_path / "v.log")
    with pytest.raises(ServerStartError) as e:
        server.start()
    assert "exited with status 3" in str(e.value) and "cannot load this model" in str(e.value)
    assert not server.running


def test_server_that_never_answers_times_out_and_is_killed(
    tmp_path: Path, model_folder: Path, fake_vllm_venv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_VLLM_MODE", "hang")
    server = VLLMServer(model_folder, venv=fake_vllm_venv, port=free_port(), startup_timeout=2.0, stop_grace=5.0)
    with pytest.raises(ServerStartError, match=r"did not answer .* within 2 s") as e:
        server.start()
    assert "engine pid" in str(e.value)  # the log tail
    assert not server.running
    engine = int(str(e.value).split("engine pid ")[1].split()[0])
    assert not _alive(engine)


def test_sigterm_ignoring_server_is_killed(tmp_path: Path, model_folder: Path) -> None:
    venv = tmp_path / "stubborn"
    (venv / "bin").mkdir(parents=True)
    script = venv / "bin" / "python"
    script.write_text(f"#!/bin/sh\ntrap '' TERM\necho $$ > {tmp_path / 'pid'}\nsleep 60 &\nsleep 60\n")
    script.chmod(0o755)
    server = VLLMServer(model_folder, venv=venv, startup_timeout=0.5, stop_grace=0.5)
    with pytest.raises(ServerStartError, match="did not answer"):
        server.start()
    assert _group_gone(int((tmp_path / "pid").read_text()))


def test_from_config_reads_llm_block(workspace: Path, monkeypatch: pytest.MonkeyPatch, fake_vllm_venv: Path) -> None:
    monkeypatch.setenv("RAG_LLM__VENV", str(fake_vllm_venv))
    monkeypatch.setenv("RAG_LLM__PORT", "8765")
    monkeypatch.setenv("RAG_LLM__MODEL", "served-x")
    server = VLLMServer.from_config(load_config())
    assert server.port == 8765 and server.served_model_name == "served-x"
    assert server.model_dir == workspace / "models" / "smollm2-135m-instruct"
    assert server.log_path == workspace / "logs" / "vllm-8765.log"
    assert server.max_model_len == 1536 + 768
    assert server.base_url == "http://127.0.0.1:8765/v1"
    other = VLLMServer.from_config(load_config(), model_dir=Path("elsewhere"), port=9001)
    assert other.model_dir == Path("elsewhere") and other.port == 9001


def test_parallel_and_prefix_caching_settings_reach_the_command_line(
    model_folder: Path, fake_vllm_venv: Path, tmp_path: Path
) -> None:
    from rag.core.config import load_config
    from rag.llm.server import parallel_args

    assert parallel_args() == []  # vLLM's own defaults unless asked
    cfg = load_config(
        home=tmp_path,
        llm={
            "venv": str(fake_vllm_venv),
            "tensor_parallel_size": 2,
            "data_parallel_size": 4,
            "prefix_caching": True,
            "max_num_seqs": 64,
        },
    )
    cmd = " ".join(VLLMServer.from_config(cfg, model_dir=model_folder).command())
    assert "--tensor-parallel-size 2" in cmd and "--data-parallel-size 4" in cmd
    assert "--enable-prefix-caching" in cmd and "--max-num-seqs 64" in cmd
    off = load_config(home=tmp_path, llm={"venv": str(fake_vllm_venv), "prefix_caching": False})
    assert "--no-enable-prefix-caching" in VLLMServer.from_config(off, model_dir=model_folder).command()
