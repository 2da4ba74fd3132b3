"""Typed exceptions of the report generator stage (:mod:`rag.llm`).

Like :mod:`rag.core.errors`: each message names the bad value, what is allowed and the fix; only the CLI
turns them into exit codes.
"""

from __future__ import annotations

from rag.core.errors import RagError


class LLMError(RagError):
    """The language model cannot be prepared, served or asked (the message names the value and the fix)."""


class LLMConnectionError(LLMError):
    """No server answers at the configured URL (refused, unreachable or timed out)."""


class LLMHTTPError(LLMError):
    """The server answered with an HTTP error status; ``status`` and the server's ``detail`` are kept."""

    def __init__(self, message: str, *, status: int, detail: str) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class LLMOutputError(LLMError):
    """The model's answer is not the JSON object asked for (e.g. cut off at ``max_tokens``)."""

    def __init__(self, message: str, *, finish_reason: str | None, text: str) -> None:
        super().__init__(message)
        self.finish_reason = finish_reason
        self.text = text


class ModelPrepareError(LLMError):
    """The model folder cannot be made: the source package or a converter library is missing, or the folder is
    in the way."""


class ServerStartError(LLMError):
    """The vLLM server is not installed, exited while starting, or did not become healthy in time."""
