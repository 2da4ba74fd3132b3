"""Stands in for ``python -m vllm.entrypoints.openai.api_server`` in unit tests of :class:`VLLMServer`.

Takes the same ``--host``, ``--port`` and ``--served-model-name`` options (ignores the others), prints a
line, starts a child process (as vLLM starts its engine) and answers ``/health`` and ``/v1/models``.
``FAKE_VLLM_MODE=die`` exits with status 3 at once; ``hang`` never listens.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-m", dest="module")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--served-model-name", default="fake")
    args, _unknown = parser.parse_known_args()
    mode = os.environ.get("FAKE_VLLM_MODE", "ok")
    print(f"fake vllm {mode} argv={sys.argv[1:]} kv={os.environ.get('VLLM_CPU_KVCACHE_SPACE')}", flush=True)
    if mode == "die":
        print("ValueError: cannot load this model", flush=True)
        sys.exit(3)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print(f"engine pid {child.pid}", flush=True)
    if mode == "hang":
        time.sleep(600)
    name = args.served_model_name

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/health":
                body: Any = {}
            elif self.path == "/v1/models":
                body = {"object": "list", "data": [{"id": name, "object": "model"}]}
            else:
                self.send_response(404)
                self.end_headers()
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    time.sleep(0.3)
    HTTPServer((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
