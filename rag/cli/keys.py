"""``rag keys create|revoke|list``: API keys of the HTTP service, stored hashed in the case store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rag.cli.common import ConfigOpt, friendly

if TYPE_CHECKING:
    from rag.store import Store

__all__ = ["keys_app"]

keys_app = typer.Typer(help="API keys of the HTTP service (stored hashed, with scopes).", no_args_is_help=True)


def _store(config: Path | None) -> Store:
    from rag.core.config import load_config
    from rag.store import open_store

    return open_store(load_config(config).db_url)


@keys_app.command("create")
@friendly
def create_cmd(
    name: Annotated[str, typer.Argument(help="A name for the key (who or what uses it).")],
    scope: Annotated[
        list[str] | None, typer.Option("--scope", "-s", help="read (default), upload, admin; repeatable.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Create a key and print its secret once (only its hash is stored)."""
    from rag.store.access import create_key

    store = _store(config)
    try:
        info, secret = create_key(store, name, scope or ["read"])
    finally:
        store.close()
    typer.echo(f"key {info.name} ({' '.join(info.scopes)}): {secret}")
    typer.echo("keep the secret now: it is not stored and cannot be shown again", err=True)


@keys_app.command("revoke")
@friendly
def revoke_cmd(name: Annotated[str, typer.Argument(help="The key's name.")], config: ConfigOpt = None) -> None:
    """Revoke a key: every worker of the service refuses it within its key cache time (2 s)."""
    from rag.store.access import revoke_key

    store = _store(config)
    try:
        info = revoke_key(store, name)
    finally:
        store.close()
    typer.echo(f"key {info.name} revoked at {info.revoked_at}")


@keys_app.command("list")
@friendly
def list_cmd(config: ConfigOpt = None) -> None:
    """The keys: name, secret prefix, scopes, created, revoked (never a secret)."""
    from rag.store.access import list_keys

    store = _store(config)
    try:
        for k in list_keys(store):
            state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
            typer.echo(f"{k.name:24s} {k.prefix}...  {' '.join(k.scopes):20s} {state}")
    finally:
        store.close()
