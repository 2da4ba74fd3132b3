"""The ``rag`` command line. Heavy libraries are imported inside the commands so ``--help`` stays fast."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from rag.errors import RagError

app = typer.Typer(
    name="rag",
    help="Retrieval-augmented interpretation of echocardiograms: ingest, store, embed, retrieve, draft.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
store_app = typer.Typer(help="Inspect the case store.", no_args_is_help=True)
app.add_typer(store_app, name="store")

F = TypeVar("F", bound=Callable[..., Any])

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML configuration file (default: $RAG_CONFIG or ./rag.yaml).")
]


def _friendly(fn: F) -> F:
    """Turn the library's typed errors into a one-line message and exit code 2."""

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


@app.command()
@_friendly
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest (walked recursively).")],
    config: ConfigOpt = None,
    workers: Annotated[int | None, typer.Option(help="Decoding processes (default: ingest.workers).")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    strict: Annotated[bool, typer.Option(help="Exit with status 1 when any item was skipped.")] = False,
    show: Annotated[int, typer.Option(help="How many skip reasons to print.")] = 20,
) -> None:
    """Ingest DICOM folders, MP4/AVI exports, PNG/JPEG stills and report text into the case store."""
    from rag.config import load_config
    from rag.ingest.pipeline import ingest as run_ingest

    cfg = load_config(config)
    if workers is not None:
        cfg.ingest.workers = workers
    report = run_ingest(paths, cfg, progress=progress and sys.stderr.isatty())
    typer.echo(report.summary())
    skipped = report.by_status("skipped")
    for item in skipped[:show]:
        typer.echo(f"  skipped {item.path}: {item.reason}")
    if len(skipped) > show:
        typer.echo(f"  ... and {len(skipped) - show} more")
    typer.echo(f"report: {cfg.reports_dir}")
    if strict and skipped:
        raise typer.Exit(1)


@app.command()
@_friendly
def simulate(
    out: Annotated[Path, typer.Option(help="Folder to write the archive to.")] = Path("sim-archive"),
    patients: Annotated[int, typer.Option(min=1, help="Number of patients (1-4 studies each).")] = 10,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed writes identical files.")] = 0,
    workers: Annotated[int, typer.Option(min=1, help="Processes writing studies in parallel.")] = 1,
    preview: Annotated[bool, typer.Option(help="Also write preview.png: one frame per view, LV area plot.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Write a simulated echo archive (real DICOM, MP4, reports) with its ground truth."""
    from tqdm import tqdm

    from rag.simulate.archive import simulate_archive

    with tqdm(desc="simulate", unit="study", disable=not (progress and sys.stderr.isatty())) as bar:
        summary = simulate_archive(out, patients=patients, seed=seed, workers=workers, progress=bar.update)
    typer.echo(
        f"patients={summary.patients} studies={summary.studies} clips={summary.clips} stills={summary.stills} "
        f"videos={summary.videos} reports={summary.reports} seconds={summary.seconds:.1f}"
    )
    typer.echo(f"truth: {out / 'truth'}")
    if preview:
        from rag.simulate.archive import write_preview

        typer.echo(f"preview: {write_preview(out / 'preview.png', seed=seed)}")


@app.command("config")
@_friendly
def show_config(config: ConfigOpt = None) -> None:
    """Print the resolved configuration (secrets hidden)."""
    from rag.config import load_config

    cfg = load_config(config)
    typer.echo(json.dumps(cfg.model_dump(mode="json"), indent=2))


@store_app.command("info")
@_friendly
def store_info(config: ConfigOpt = None) -> None:
    """Print how many rows each table of the case store holds."""
    from sqlalchemy import func, select

    from rag.config import load_config
    from rag.store import Base, open_store

    cfg = load_config(config)
    store = open_store(cfg.db_url)
    try:
        with store.session() as s:
            for table in Base.metadata.sorted_tables:
                n = s.scalar(select(func.count()).select_from(table))
                typer.echo(f"{table.name:16s} {n}")
    finally:
        store.close()


def main() -> None:  # pragma: no cover - console entry point
    app()
