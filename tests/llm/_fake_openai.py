"""A tiny OpenAI-compatible HTTP server on 127.0.0.1 that answers with canned responses (unit tests)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Canned:
    """One answer: HTTP status, JSON body (or raw text) and an optional delay in seconds."""

    status: int = 200
    body: Any = None
    raw: str | None = None
    delay: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


def chat_answer(content: str, *, finish_reason: str = "stop", prompt: int = 12, completion: int = 7) -> dict[str, Any]:
    """An OpenAI chat.completion body holding ``content``."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": "tiny-test",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }


@dataclass
class FakeOpenAI:
    """Routes ``(method, path)`` to :class:`Canned` answers; unknown routes answer 404. Records every request."""

    routes: dict[tuple[str, str], Canned] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def answer(self, method: str, path: str, canned: Canned) -> None:
        self.routes[(method, path)] = canned

    def start(self) -> FakeOpenAI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                fake.seen.append(Seen(method, self.path, dict(self.headers.items()), body))
                canned = fake.routes.get((method, self.path), Canned(404, {"error": {"message": "no such route"}}))
                if canned.delay:
                    time.sleep(canned.delay)
                data = (canned.raw if canned.raw is not None else json.dumps(canned.body)).encode()
                self.send_response(canned.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
