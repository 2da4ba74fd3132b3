"""``rag-api``: serve the HTTP service and the clinicians' page with uvicorn.

    rag-api [--host 127.0.0.1] [--port 8080] [--workers N] [--config rag.yaml]

Several workers run the same app against one store (PostgreSQL by ``RAG_DATABASE_URL`` when more
than one process writes); each worker opens the case library, and again after another worker added an
uploaded study to it. It binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

__all__ = ["factory", "main"]


def factory() -> Any:
    """The app of one worker (uvicorn's ``--factory``): the configuration from ``RAG_CONFIG`` / env, the
    limits from ``RAG_API_RATE`` / ``RAG_API_BURST`` (requests/s per key) and ``RAG_API_MAX_UPLOAD_MB``."""
    from services.api.app import create_app

    rate = float(os.environ.get("RAG_API_RATE", "50"))
    burst = float(os.environ.get("RAG_API_BURST", str(max(2 * rate, 1))))
    upload = int(float(os.environ.get("RAG_API_MAX_UPLOAD_MB", "256")) * 2**20)
    return create_app(rate=rate, burst=burst, max_upload_bytes=upload)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="rag-api", description="Serve similar cases, drafts and comparisons.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--config", help="YAML configuration (default: $RAG_CONFIG or ./rag.yaml)")
    args = parser.parse_args(argv)
    if args.config:
        os.environ["RAG_CONFIG"] = args.config
    uvicorn.run("services.api.main:factory", factory=True, host=args.host, port=args.port, workers=args.workers)


if __name__ == "__main__":
    main()
