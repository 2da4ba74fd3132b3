"""``rag kb``: add documents to the knowledge base, search it and describe it.

Mounted by :mod:`rag.cli` as ``app.add_typer(kb_app, name="kb")``. numpy, bm25s and the embedding
model load inside the commands so ``rag --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from rag.cli.common import ConfigOpt, friendly
from rag.kb.errors import KBError

kb_app = typer.Typer(
    help="Knowledge base of reference text (guideline thresholds, normal ranges): add, search, info.",
    no_args_is_help=True,
)

KBDirOpt = Annotated[
    Path | None, typer.Option("--kb-dir", help="Knowledge-base folder (default: <workspace>/kb).", show_default=False)
]


def _folder(kb_dir: Path | None, config: Path | None) -> Path:
    if kb_dir is not None:
        return kb_dir
    from rag.core.config import load_config
    from rag.kb.store import default_kb_dir

    return default_kb_dir(load_config(config))


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3].rstrip() + "..."


@kb_app.command("add")
@friendly
def add(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Markdown (.md, .markdown) or text (.txt) files, or folders of them.")
    ] = None,
    starter: Annotated[
        bool, typer.Option("--starter", help="Add the starter knowledge base shipped with rag.")
    ] = False,
    rebuild: Annotated[
        bool,
        typer.Option(help="Re-embed and re-index every stored chunk (after a model change or an interrupted write)."),
    ] = False,
    max_chars: Annotated[int, typer.Option(min=100, help="Chunk size bound, in characters.")] = 800,
    kb_dir: KBDirOpt = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar while embedding.")] = True,
    strict: Annotated[bool, typer.Option(help="Exit with status 1 when any file was skipped.")] = False,
    show: Annotated[int, typer.Option(min=0, help="How many skip reasons to print.")] = 20,
    config: ConfigOpt = None,
) -> None:
    """Add documents to the knowledge base: unchanged ones are kept, changed ones replaced, unreadable ones skipped."""
    from rag.kb.store import add_documents, starter_dir

    targets: list[Path] = list(paths or [])
    if starter:
        targets.append(starter_dir())
    if not targets and not rebuild:
        raise KBError("Nothing to add: give files or folders, --starter, or --rebuild")
    folder = _folder(kb_dir, config)
    result = add_documents(
        targets, folder, max_chars=max_chars, rebuild=rebuild, progress=progress and sys.stderr.isatty()
    )
    typer.echo(result.summary())
    for item in result.skipped[:show]:
        typer.echo(f"  skipped {item.path}: {item.reason}")
    if len(result.skipped) > show:
        typer.echo(f"  ... and {len(result.skipped) - show} more")
    typer.echo(f"knowledge base: {folder}")
    if strict and result.skipped:
        raise typer.Exit(1)


@kb_app.command("search")
@friendly
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in words.")],
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="How many passages to return.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the hits as JSON.")] = False,
    full: Annotated[bool, typer.Option(help="Print each passage whole instead of one line of it.")] = False,
    rrf_k: Annotated[int, typer.Option(min=0, help="Reciprocal rank fusion constant.")] = 60,
    kb_dir: KBDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Search the knowledge base (MiniLM + BM25, fused by reciprocal rank)."""
    from rag.kb.search import KnowledgeBase

    kb = KnowledgeBase.open(_folder(kb_dir, config), rrf_k=rrf_k)
    hits = kb.search(query, k=k)
    if as_json:
        typer.echo(json.dumps([asdict(h) for h in hits], indent=2, ensure_ascii=False))
        return
    if not hits:
        typer.echo("no passages (the knowledge base is empty)")
    for rank, hit in enumerate(hits, 1):
        ranks = f"dense={hit.dense_rank or '-'} bm25={hit.bm25_rank or '-'}"
        typer.echo(f"{rank}. {hit.chunk_id}  score={hit.score:.4f} ({ranks})  {hit.heading}")
        if full:
            typer.echo("   " + hit.text.replace("\n", "\n   "))
        else:
            typer.echo(f"   {_one_line(hit.text, 160)}")


@kb_app.command("info")
@friendly
def info(
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
    kb_dir: KBDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Describe the knowledge base: model, counts, documents, and whether it fits the installed model."""
    from rag.kb.store import read_manifest

    folder = _folder(kb_dir, config)
    manifest = read_manifest(folder)
    if as_json:
        typer.echo(manifest.model_dump_json(indent=2))
        return
    from rag.kb.embed import MiniLMEmbedder

    installed = MiniLMEmbedder().weights_sha256
    fits = (
        "matches the installed model" if installed == manifest.embedding_sha256 else "DIFFERS: run rag kb add --rebuild"
    )
    typer.echo(f"{'folder':10s} {folder}")
    typer.echo(f"{'model':10s} {manifest.embedding_model} ({manifest.embedding_package}), dim {manifest.dim}")
    typer.echo(f"{'weights':10s} sha256 {manifest.embedding_sha256[:12]}... {fits}")
    typer.echo(f"{'keywords':10s} BM25 {json.dumps(manifest.bm25)}, tokenizer {manifest.tokenizer}")
    typer.echo(f"{'chunks':10s} {manifest.count}")
    typer.echo(f"{'documents':10s} {len(manifest.documents)}")
    typer.echo(f"{'updated':10s} {manifest.updated_at.isoformat(timespec='seconds')}")
    for doc in manifest.documents:
        typer.echo(f"  {doc.source}  chunks={doc.chunks} max_chars={doc.max_chars} sha256={doc.sha256[:12]}")
