"""A chat client for any OpenAI-compatible server (vLLM first) that asks for JSON matching a schema.

The schema travels as ``response_format: {"type": "json_schema", ..., "strict": true}``, so a server with
structured outputs (vLLM) can only emit matching JSON; the answer is still parsed here, and an answer that
is not a JSON object (e.g. cut off at ``max_tokens``) raises :class:`rag.llm.LLMOutputError`::

    from rag.llm import ChatClient

    client = ChatClient("http://127.0.0.1:8000/v1", "smollm2-135m-instruct")
    done = client.complete_json(
        [{"role": "user", "content": "Name a heart valve."}],
        {"type": "object", "properties": {"valve": {"type": "string"}}, "required": ["valve"]},
        schema_name="valve",
        max_tokens=32,
    )
    done.data["valve"], done.usage.tokens_per_second

Only what the server answers is logged (status, token counts, timings), never the messages.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import SecretStr

from rag.llm.errors import LLMConnectionError, LLMError, LLMHTTPError, LLMOutputError

if TYPE_CHECKING:
    from rag.core.config import LLMConfig

log = logging.getLogger(__name__)

SERVE_HINT = "start one with `rag llm serve` or set llm.base_url (RAG_LLM__BASE_URL) to a running server"


@dataclass(frozen=True)
class Usage:
    """Token counts and timing of one completion."""

    prompt_tokens: int
    completion_tokens: int
    seconds: float
    """Wall-clock time of the request, from sending to the full answer."""

    @property
    def tokens_per_second(self) -> float:
        """Generated tokens per second of wall-clock time (prompt processing included)."""
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class JSONCompletion:
    """A parsed JSON answer of the model."""

    data: dict[str, Any]
    """The answer parsed as a JSON object."""
    text: str
    """The answer as the model wrote it."""
    usage: Usage
    finish_reason: str | None
    """``stop`` when the model ended the answer itself, ``length`` when cut at ``max_tokens``."""
    model: str
    """The model name the server reported."""


@dataclass(frozen=True)
class TextCompletion:
    """A free-text answer of the model."""

    text: str
    usage: Usage
    finish_reason: str | None
    model: str


class ChatClient:
    """OpenAI-compatible chat completions over HTTP (httpx), with JSON-schema answers.

    Args:
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1``.
        model: the model name sent with each request (vLLM's ``--served-model-name``).
        api_key: bearer token, if the server wants one (never logged).
        timeout: seconds to wait for one answer (connecting: at most 10 s).
        transport: an httpx transport to use instead of the network (tests).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | SecretStr | None = None,
        timeout: float = 120.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise LLMError(f"llm.base_url must start with http:// or https://, got {base_url!r}")
        if not model:
            raise LLMError("llm.model must name the served model, got ''")
        if timeout <= 0:
            raise LLMError(f"llm.timeout_s must be > 0 seconds, got {timeout}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = timeout
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            trust_env=not _is_loopback(self.base_url),
        )

    @classmethod
    def from_config(cls, llm: LLMConfig) -> ChatClient:
        """A client for the configuration's ``llm`` block (base_url, model, api_key, timeout_s)."""
        return cls(llm.base_url, llm.model, api_key=llm.api_key, timeout=llm.timeout_s)

    @property
    def root_url(self) -> str:
        """The server root: ``base_url`` without its trailing ``/v1`` (where vLLM answers ``/health``)."""
        return self.base_url.removesuffix("/v1")

    # Requests ---------------------------------------------------------------------------------------
    def health(self) -> bool:
        """Whether the server answers and is ready: ``GET /health`` is 200 (or, for servers without that
        route, ``GET /models`` is). Never raises for an unreachable server: it returns False."""
        try:
            r = self._http.get(f"{self.root_url}/health")
            if r.status_code == 404:
                r = self._http.get(f"{self.base_url}/models")
        except httpx.HTTPError as e:
            log.debug("health check of %s failed: %s", self.root_url, e)
            return False
        return r.status_code == 200

    def models(self) -> list[str]:
        """IDs of the models the server serves.

        Raises:
            LLMConnectionError: nothing answers at ``base_url``.
            LLMHTTPError: the server answered with an error status.
        """
        body = self._request("GET", "/models")
        return [str(m.get("id")) for m in body.get("data", []) if isinstance(m, dict)]

    def complete_json(
        self,
        messages: Sequence[Mapping[str, str]],
        schema: dict[str, Any],
        *,
        schema_name: str,
        max_tokens: int,
        temperature: float = 0.0,
        frequency_penalty: float = 0.0,
    ) -> JSONCompletion:
        """Ask for one answer that is a JSON object matching ``schema``.

        Args:
            messages: chat messages, ``{"role": "system" | "user" | "assistant", "content": ...}``.
            schema: JSON schema of the answer (an object schema).
            schema_name: name of the schema sent to the server (letters, digits, ``_`` and ``-``).
            max_tokens: most tokens to generate.
            temperature: sampling temperature (0: greedy).
            frequency_penalty: OpenAI's penalty on tokens by how often they already appeared (0: none,
                not sent); a small model caught repeating itself ("1.1.1.1...") escapes with ~0.5.

        Raises:
            LLMConnectionError: nothing answers at ``base_url`` (or not within the timeout).
            LLMHTTPError: the server answered with an error status (its message is kept).
            LLMOutputError: the answer is not a JSON object (the message names finish_reason and an excerpt).
        """
        payload = self._payload(messages, max_tokens, temperature)
        if frequency_penalty:
            payload["frequency_penalty"] = frequency_penalty
        payload["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": schema_name, "schema": schema, "strict": True},
        }
        done = self._complete(payload)
        text, usage, finish_reason = done.text, done.usage, done.finish_reason
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            hint = (
                f"; the answer was cut at max_tokens={max_tokens}: raise max_tokens (llm.max_tokens)"
                if finish_reason == "length"
                else ""
            )
            raise LLMOutputError(
                f"The model's answer is not valid JSON ({e.msg} at character {e.pos}), "
                f"finish_reason={finish_reason!r}{hint}. Answer: {_excerpt(text)}",
                finish_reason=finish_reason,
                text=text,
            ) from e
        if not isinstance(data, dict):
            raise LLMOutputError(
                f"The model's answer is JSON but not an object (a {type(data).__name__}), "
                f"finish_reason={finish_reason!r}. Answer: {_excerpt(text)}",
                finish_reason=finish_reason,
                text=text,
            )
        return JSONCompletion(data=data, text=text, usage=usage, finish_reason=finish_reason, model=done.model)

    def complete_text(
        self, messages: Sequence[Mapping[str, Any]], *, max_tokens: int, temperature: float = 0.0
    ) -> TextCompletion:
        """Ask for one free-text answer. ``content`` may be a string or OpenAI content parts (text and
        ``image_url`` with a base64 data URL) for vision-language models.

        Raises:
            LLMConnectionError / LLMHTTPError: as :meth:`complete_json`.
        """
        return self._complete(self._payload(messages, max_tokens, temperature))

    def _payload(self, messages: Sequence[Mapping[str, Any]], max_tokens: int, temperature: float) -> dict[str, Any]:
        if max_tokens < 1:
            raise LLMError(f"max_tokens must be >= 1, got {max_tokens}")
        if not messages:
            raise LLMError("messages must hold at least one chat message")
        return {
            "model": self.model,
            "messages": [dict(m) for m in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
        }

    def _complete(self, payload: dict[str, Any]) -> TextCompletion:
        t0 = time.perf_counter()
        body = self._request("POST", "/chat/completions", payload=payload)
        seconds = time.perf_counter() - t0
        try:
            choice = body["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as e:
            raise LLMError(
                f"{self.base_url}/chat/completions answered without choices[0].message.content: "
                f"{json.dumps(body)[:300]}"
            ) from e
        finish_reason = choice.get("finish_reason")
        usage_raw = body.get("usage") or {}
        usage = Usage(
            prompt_tokens=int(usage_raw.get("prompt_tokens") or 0),
            completion_tokens=int(usage_raw.get("completion_tokens") or 0),
            seconds=seconds,
        )
        log.info(
            "completion: %d prompt + %d completion tokens in %.2f s (%.1f tokens/s), finish_reason=%s",
            usage.prompt_tokens,
            usage.completion_tokens,
            seconds,
            usage.tokens_per_second,
            finish_reason,
        )
        return TextCompletion(text, usage, finish_reason, str(body.get("model", self.model)))

    def _request(self, method: str, path: str, *, payload: Any = None) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        try:
            r = self._http.request(method, url, json=payload)
        except httpx.ConnectError as e:
            raise LLMConnectionError(f"Cannot connect to the LLM server at {self.base_url} ({e}); {SERVE_HINT}.") from e
        except httpx.TimeoutException as e:
            raise LLMConnectionError(
                f"The LLM server at {self.base_url} did not answer {method} {path} within {self.timeout:.0f} s "
                f"({type(e).__name__}); raise llm.timeout_s or check the server."
            ) from e
        except httpx.HTTPError as e:
            raise LLMConnectionError(f"Request to the LLM server at {url} failed: {e}; {SERVE_HINT}.") from e
        if r.status_code >= 400:
            detail = _server_message(r)
            raise LLMHTTPError(
                f"The LLM server answered {method} {url} with HTTP {r.status_code}: {detail}",
                status=r.status_code,
                detail=detail,
            )
        try:
            body = r.json()
        except ValueError as e:
            raise LLMError(f"The LLM server at {url} answered with non-JSON: {_excerpt(r.text)}") from e
        if not isinstance(body, dict):
            raise LLMError(f"The LLM server at {url} answered with a JSON {type(body).__name__}, not an object")
        return body

    # Life cycle -------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ChatClient({self.base_url!r}, {self.model!r})"


def _server_message(r: httpx.Response) -> str:
    """The error message in an OpenAI-style (``{"error": {"message": ...}}``) or vLLM-style body, else the text."""
    try:
        body = r.json()
    except ValueError:
        return _excerpt(r.text) or r.reason_phrase
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
        for key in ("message", "detail"):
            if body.get(key):
                return str(body[key])
    return _excerpt(json.dumps(body))


def _excerpt(text: str, limit: int = 200) -> str:
    text = text.strip()
    if len(text) <= 2 * limit:
        return repr(text)
    return f"{text[:limit]!r} ... {text[-limit // 2 :]!r} ({len(text)} characters)"


def _is_loopback(url: str) -> bool:
    host = httpx.URL(url).host
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")
