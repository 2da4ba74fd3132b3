"""``rag index``: build, describe and verify the vector indexes under ``<workspace>/indexes/``.

Mounted by :mod:`rag.cli` as ``app.add_typer(index_app, name="index")``. Heavy libraries load inside
the commands so ``rag --help`` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rag.cli.common import ConfigOpt, friendly
from rag.core.errors import VectorIndexError
from rag.core.lookup import look_up_option

if TYPE_CHECKING:
    from rag.core.config import RagConfig
    from rag.index.catalog import Catalog
    from rag.index.manifest import IndexManifest

index_app = typer.Typer(help="Build, describe and verify vector indexes.", no_args_is_help=True)

TOKEN_ENV = "RAG_MILVUS_TOKEN"
"""Environment variable holding a Milvus server token (never written to the manifest)."""

NameArg = Annotated[str, typer.Argument(help="Index name (a folder under <workspace>/indexes/).")]


def _quiet_openmp() -> None:
    """Let idle OpenMP threads sleep instead of spin unless the user chose otherwise: on shared cores spinning
    threads made FAISS training several times slower. Takes effect only before FAISS is first imported."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _config(config: Path | None) -> RagConfig:
    from rag.core.config import load_config

    return load_config(config)


def _parse_params(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise VectorIndexError(f"--param expects KEY=VALUE, got '{item}' (e.g. --param nprobe=32)")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


@index_app.command("build")
@friendly
def build(
    embeddings: Annotated[Path, typer.Option(help="Folder written by `rag embed` (<workspace>/embeddings/...).")],
    name: Annotated[str | None, typer.Option(help="Index name (default: the source).")] = None,
    source: Annotated[str, typer.Option(help="Which vectors: clips, images or sections.")] = "clips",
    kind: Annotated[str, typer.Option(help="auto, flat, hnsw, ivf_flat or ivf_pq.")] = "auto",
    backend: Annotated[str, typer.Option(help="faiss (files in the index folder) or milvus.")] = "faiss",
    uri: Annotated[
        str | None,
        typer.Option(help="Milvus: a .db file (Milvus Lite) or http://host:19530; default <index>/milvus.db."),
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Build/search parameter KEY=VALUE (repeatable).")
    ] = None,
    device: Annotated[str, typer.Option(help="FAISS: cpu, auto or cuda.")] = "cpu",
    force: Annotated[bool, typer.Option(help="Replace an existing index of that name.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Build an index over one kind of embeddings and write <workspace>/indexes/NAME/."""
    _quiet_openmp()
    from rag.encoders.embed import KINDS, load_embeddings
    from rag.index.faiss_index import KINDS as INDEX_KINDS
    from rag.index.faiss_index import build_index, choose_kind
    from rag.index.library import embeddings_manifest
    from rag.index.protocol import VectorIndex
    from rag.index.store import MANIFEST, save_index_of_embeddings

    if source not in KINDS:
        raise VectorIndexError(f"Unknown source '{source}'. Available: {list(KINDS)}")
    look_up_option(kind, ("auto", *INDEX_KINDS), what="index kind", error=VectorIndexError)
    if backend not in ("faiss", "milvus"):
        raise VectorIndexError(f"Unknown backend '{backend}'. Available: ['faiss', 'milvus']")
    cfg = _config(config)
    name = name or source
    folder = cfg.indexes_dir / name
    if (folder / MANIFEST).exists() and not force:
        raise VectorIndexError(f"Index '{name}' already exists at {folder}; pass --force to replace it")
    emb_manifest = embeddings_manifest(embeddings)
    if not (embeddings / f"{source}.ids.npy").is_file():
        have = [k for k in KINDS if (embeddings / f"{k}.ids.npy").is_file()]
        raise VectorIndexError(f"{embeddings} holds no {source} vectors (it holds {have}); run `rag embed` first")
    emb = load_embeddings(embeddings, source)
    params = _parse_params(param or [])
    started = time.perf_counter()
    index: VectorIndex
    build_params: dict[str, Any] | None = None
    views_note = ""
    if backend == "faiss":
        index = build_index(emb.vectors, emb.ids, kind=kind, device=device, progress=sys.stderr.isatty(), **params)
    else:
        import numpy as np

        from rag.index.attributes import attributes_for
        from rag.index.milvus_index import MilvusIndex, collection_name

        attributes = attributes_for(
            source,
            emb.ids,
            catalog=_known_catalog(cfg) if source == "clips" else None,
            view_probs=emb.extra.get("view_probs"),
            view_classes=emb_manifest.get("view_classes") or None,
        )
        chosen = choose_kind(len(emb.ids)) if kind == "auto" else kind
        local_default = uri is None
        target = str(folder / "milvus.db") if uri is None else uri
        coll = str(params.pop("collection", collection_name(name)))
        milvus = MilvusIndex(target, coll, int(emb.vectors.shape[1]), chosen, token=os.environ.get(TOKEN_ENV), **params)
        if force and len(milvus):
            milvus.drop()
            milvus = MilvusIndex(
                target, coll, int(emb.vectors.shape[1]), chosen, token=os.environ.get(TOKEN_ENV), **params
            )
        milvus.add(emb.ids, emb.vectors, attributes=attributes)
        views_note = f" views known={int(np.count_nonzero(attributes['view'] != ''))}"
        build_params = milvus.params
        if local_default:
            build_params["uri"] = "milvus.db"  # relative to the index folder, so the workspace can move
        index = milvus
    seconds = time.perf_counter() - started
    manifest = save_index_of_embeddings(
        index,
        folder,
        name=name,
        embeddings=embeddings,
        embeddings_manifest=emb_manifest,
        source=source,
        build_params=build_params,
    )
    typer.echo(
        f"index {name}: backend={backend} kind={index.kind} n={len(index)} dim={index.dim} "
        f"encoder={manifest.encoder}{views_note} seconds={seconds:.1f}"
    )
    typer.echo(f"folder: {folder}")


@index_app.command("info")
@friendly
def info(
    name: NameArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Print an index's manifest and files (does not load the index)."""
    from rag.index.store import read_manifest

    folder = _config(config).indexes_dir / name
    manifest = read_manifest(folder)
    if as_json:
        typer.echo(manifest.model_dump_json(indent=2))
        return
    for key, value in manifest.model_dump(mode="json").items():
        shown = json.dumps(value) if isinstance(value, dict) else value
        typer.echo(f"{key:18s} {shown}")
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            typer.echo(f"{'file':18s} {path.name} {path.stat().st_size} bytes")


@index_app.command("migrate")
@friendly
def migrate_cmd(
    name: Annotated[str, typer.Argument(help="The index to copy (under <workspace>/indexes/).")],
    to: Annotated[str, typer.Option("--to", help="faiss or milvus.")],
    new_name: Annotated[str | None, typer.Option("--as", help="The copy's name (default: NAME-<backend>).")] = None,
    uri: Annotated[
        str | None,
        typer.Option(help="Milvus: a .db file (Milvus Lite) or http://host:19530; default <copy>/milvus.db."),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Copy an index to the other back-end (FAISS <-> Milvus), same IDs, kind and manifest, and check it.

    A Milvus copy gets each row's view and modality: clips' views from the store (or the case library's
    catalog), else from the view probabilities in the embeddings folder."""
    _quiet_openmp()
    from rag.index.migrate import migrate_index
    from rag.index.store import read_manifest

    cfg = _config(config)
    source = cfg.indexes_dir / name
    target = cfg.indexes_dir / (new_name or f"{name}-{to}")
    catalog = _known_catalog(cfg) if to == "milvus" and read_manifest(source).source == "clips" else None
    done = migrate_index(source, target, to, uri=uri, catalog=catalog)
    views = f" views known={done.with_view}" if to == "milvus" else ""
    typer.echo(
        f"index {done.source.name} -> {done.target.name}: backend={done.backend} n={done.count}{views}; "
        f"top-10 overlap with the source on {min(32, done.count)} stored vectors: {done.overlap:.3f}"
    )


@index_app.command("list")
@friendly
def list_indexes(config: ConfigOpt = None) -> None:
    """List the indexes of the workspace."""
    from rag.index.store import MANIFEST, read_manifest

    root = _config(config).indexes_dir
    for folder in sorted(p for p in root.glob("*") if (p / MANIFEST).is_file()):
        m = read_manifest(folder)
        typer.echo(f"{m.name:20s} {m.backend:6s} {m.kind:8s} n={m.count:<9d} {m.source:8s} {m.encoder}")


@index_app.command("verify")
@friendly
def verify(
    name: NameArg,
    sample: Annotated[int, typer.Option(min=1, help="Stored vectors that must retrieve themselves.")] = 100,
    min_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of the sample that must come back at rank 1.")
    ] = 0.99,
    seed: int = 0,
    config: ConfigOpt = None,
) -> None:
    """Check an index against its manifest, files and embeddings; exit 1 with the reason on failure."""
    _quiet_openmp()
    cfg = _config(config)
    folder = cfg.indexes_dir / name
    problems = run_checks(folder, cfg.home / "embeddings", sample=sample, min_rate=min_rate, seed=seed, echo=typer.echo)
    if problems:
        for p in problems:
            typer.echo(f"FAILED: {p}", err=True)
        raise typer.Exit(1)
    typer.echo(f"index {name}: ok")


def run_checks(
    folder: Path,
    embeddings_root: Path,
    *,
    sample: int = 100,
    min_rate: float = 0.99,
    seed: int = 0,
    echo: Callable[[str], Any] = print,
) -> list[str]:
    """The checks of ``rag index verify``. Returns the failures (empty when the index is sound)."""
    import numpy as np

    from rag.encoders.embed import load_embeddings
    from rag.index.library import embeddings_manifest
    from rag.index.store import load_index, read_manifest

    problems: list[str] = []
    manifest = read_manifest(folder)
    echo(
        f"manifest: {manifest.backend}/{manifest.kind} n={manifest.count} dim={manifest.dim} encoder={manifest.encoder}"
    )
    try:
        index, _ = load_index(folder, mmap=True, milvus_token=os.environ.get(TOKEN_ENV))
    except VectorIndexError as e:
        return [str(e)]
    echo(f"files: ok (n={len(index)}, dim={index.dim})")
    stored_ids = np.asarray(index.ids()) if hasattr(index, "ids") else None
    emb_dir = _embeddings_folder(manifest, embeddings_root)
    vectors_by_id: tuple[np.ndarray, np.ndarray] | None = None
    if emb_dir is None:
        echo("embeddings: not found, skipped (checked the index against itself only)")
    else:
        emb_manifest = embeddings_manifest(emb_dir)
        for key in ("encoder", "checkpoint_sha256", "dim"):
            if emb_manifest.get(key) != getattr(manifest, key):
                problems.append(
                    f"{key}: index manifest {getattr(manifest, key)!r} but embeddings {emb_dir} have "
                    f"{emb_manifest.get(key)!r}; rebuild with `rag index build --embeddings {emb_dir} "
                    f"--source {manifest.source} --name {manifest.name} --force`"
                )
        if not problems:
            emb = load_embeddings(emb_dir, manifest.source)
            by_id = np.argsort(emb.ids, kind="stable")
            vectors_by_id = (emb.ids[by_id], emb.vectors[by_id])
            if stored_ids is not None and not np.array_equal(np.sort(emb.ids), stored_ids):
                missing = np.setdiff1d(emb.ids, stored_ids).size
                extra = np.setdiff1d(stored_ids, emb.ids).size
                problems.append(
                    f"IDs differ from the embeddings in {emb_dir}: {missing} embedded but not indexed, {extra} indexed "
                    f"but not embedded; rebuild with `rag index build --embeddings {emb_dir} --source "
                    f"{manifest.source} --name {manifest.name} --force`"
                )
            else:
                echo(f"embeddings: ok ({emb_dir}, {emb.ids.size} {manifest.source})")
    n = len(index)
    if n == 0:
        echo("self-retrieval: skipped (empty index)")
        return problems
    pool = stored_ids if stored_ids is not None else (vectors_by_id[0] if vectors_by_id else None)
    if pool is None:
        problems.append("cannot list the index's IDs to sample from")
        return problems
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(pool, size=min(sample, pool.size), replace=False))
    if vectors_by_id is not None and np.isin(picked, vectors_by_id[0]).all():
        order = np.searchsorted(vectors_by_id[0], picked)
        queries = vectors_by_id[1][order]
    else:
        queries = index.get_vectors(picked)  # type: ignore[attr-defined]
    scores, hits = index.search(queries, min(10, n))
    ok = 0
    for row, wanted in enumerate(picked):
        found = np.flatnonzero(hits[row] == wanted)
        # a tie with an identical vector stored under another ID still counts as rank 1
        if found.size and scores[row, found[0]] >= scores[row, 0] - 1e-5:
            ok += 1
    rate = ok / picked.size
    line = f"self-retrieval: {ok}/{picked.size} stored vectors found themselves at rank 1 (required {min_rate:.2f})"
    echo(line)
    if rate < min_rate:
        problems.append(line)
    return problems


def _embeddings_folder(manifest: IndexManifest, root: Path) -> Path | None:
    candidates = [Path(manifest.embeddings_dir)] if manifest.embeddings_dir else []
    candidates.append(root / f"{manifest.encoder}@{manifest.checkpoint_sha256[:12]}")
    return next((c for c in candidates if (c / "manifest.json").is_file()), None)


@index_app.command("library")
@friendly
def library_cmd(
    embeddings: Annotated[
        Path | None,
        typer.Option(help="Folder written by `rag embed` (default: that of <workspace>/checkpoints/last.pt)."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Library folder (default: <workspace>/indexes/library).")] = None,
    kind: Annotated[str, typer.Option(help="Per-section index kind: auto, flat, hnsw, ivf_flat or ivf_pq.")] = "auto",
    update: Annotated[
        bool, typer.Option("--update", help="Add what the store gained since the build instead of rebuilding.")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Build (or update) the case library that drafting opens: per-section indexes, catalog, grades, clips."""
    _quiet_openmp()
    from rag.index.faiss_index import KINDS as INDEX_KINDS
    from rag.index.library import LIBRARY_DIR, CaseLibrary
    from rag.store import open_store

    look_up_option(kind, ("auto", *INDEX_KINDS), what="index kind", error=VectorIndexError)
    cfg = _config(config)
    folder = out if out is not None else cfg.indexes_dir / LIBRARY_DIR
    source = embeddings if embeddings is not None else _workspace_embeddings(cfg)
    store = open_store(cfg.db_url)
    started = time.perf_counter()
    try:
        if update:
            counts = CaseLibrary.open(folder).update(store, source)
            typer.echo(f"updated {folder}: {counts} in {time.perf_counter() - started:.1f}s")
            return
        library = CaseLibrary.build(store, source, folder, kind=kind, progress=sys.stderr.isatty())
    finally:
        store.close()
    typer.echo(
        f"built {folder}: {library.manifest.counts} ({library.manifest.encoder}@"
        f"{library.manifest.checkpoint_sha256[:12]}) in {time.perf_counter() - started:.1f}s"
    )


def _known_catalog(cfg: RagConfig) -> Catalog | None:
    """The catalog of the case store, for the views clips declared: read from the store when it exists, else
    from the case library's copy; None without either (views then come from the view probabilities)."""
    from sqlalchemy.engine import make_url

    from rag.index.catalog import Catalog
    from rag.index.library import LIBRARY_DIR
    from rag.store import open_store

    url = make_url(cfg.db_url)
    if not url.get_backend_name().startswith("sqlite") or (url.database and Path(url.database).is_file()):
        store = open_store(cfg.db_url)
        try:
            return Catalog.load(store)
        finally:
            store.close()
    saved = cfg.indexes_dir / LIBRARY_DIR / "catalog"
    return Catalog.open(saved) if (saved / "catalog.json").is_file() else None


def _workspace_embeddings(cfg: RagConfig) -> Path:
    from rag.core.digest import file_sha256

    checkpoint = cfg.home / "checkpoints" / "last.pt"
    if not checkpoint.is_file():
        raise VectorIndexError(f"no checkpoint at {checkpoint}; pass --embeddings <folder from rag embed>")
    sha = file_sha256(checkpoint)
    found = sorted(p for p in (cfg.home / "embeddings").glob(f"*@{sha[:12]}") if (p / "manifest.json").is_file())
    if not found:
        raise VectorIndexError(
            f"no embeddings of {checkpoint} (sha256 {sha[:12]}) under {cfg.home / 'embeddings'}; run `rag embed` first"
        )
    return found[0]
