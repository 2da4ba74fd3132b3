"""Pieces shared by the command-line apps (``rag`` and its sub-apps): error handling and options."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from rag.core.errors import RagError

F = TypeVar("F", bound=Callable[..., Any])

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML configuration file (default: $RAG_CONFIG or ./rag.yaml).")
]


def friendly(fn: F) -> F:
    """Turn the library's typed errors into a one-line message and exit code 2 (130 on Ctrl-C)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RagError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from e
        except KeyboardInterrupt:
            typer.echo("interrupted; what was committed is kept, re-run to complete", err=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]
