"""The ``rag`` command line. Heavy libraries are imported inside the commands so ``--help`` stays fast."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from rag.cli.common import ConfigOpt, friendly
from rag.cli.compare import compare_cmd, compare_fit_cmd, eval_compare_cmd, eval_cxr_change_cmd
from rag.cli.draft import draft_cmd
from rag.cli.eval import eval_app, evaluate_cmd
from rag.cli.index import index_app
from rag.cli.kb import kb_app
from rag.cli.keys import keys_app
from rag.cli.llm import llm_app
from rag.cli.pacs import pacs_app
from rag.cli.retrieve import retrieve_app
from rag.encoders.spec import DEFAULT_ENCODER

app = typer.Typer(
    name="rag",
    help="Retrieval-augmented interpretation of echocardiograms: ingest, store, embed, retrieve, draft, compare.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
store_app = typer.Typer(help="Inspect the case store.", no_args_is_help=True)
app.add_typer(store_app, name="store")
app.add_typer(index_app, name="index")
app.add_typer(llm_app, name="llm")
app.add_typer(retrieve_app, name="retrieve")
app.add_typer(kb_app, name="kb")
app.add_typer(keys_app, name="keys")
app.add_typer(pacs_app, name="pacs")
app.add_typer(eval_app, name="eval")
retrieve_app.command("evaluate", help="Same as `rag eval retrieval`.")(evaluate_cmd)
app.command("draft")(draft_cmd)
app.command("compare")(compare_cmd)
retrieve_app.command("fit-changes")(compare_fit_cmd)
eval_app.command("compare")(eval_compare_cmd)
eval_app.command("cxr-change")(eval_cxr_change_cmd)


@app.command()
@friendly
def ingest(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or folders to ingest (walked recursively).")] = None,
    config: ConfigOpt = None,
    workers: Annotated[int | None, typer.Option(help="Decoding processes (default: ingest.workers).")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    strict: Annotated[bool, typer.Option(help="Exit with status 1 when any item was skipped.")] = False,
    show: Annotated[int, typer.Option(help="How many skip reasons to print.")] = 20,
    dicomweb: Annotated[
        str | None, typer.Option(help="A PACS's DICOMweb root (e.g. http://127.0.0.1:8042/dicom-web).")
    ] = None,
    study: Annotated[
        list[str] | None, typer.Option(help="With --dicomweb: a Study Instance UID to fetch (repeatable).")
    ] = None,
) -> None:
    """Ingest DICOM folders, MP4/AVI exports, PNG/JPEG stills and report text into the case store, or
    studies fetched from a PACS over DICOMweb (WADO-RS)."""
    import shutil
    import uuid

    from rag.core.config import load_config
    from rag.core.errors import RagError
    from rag.ingest.pipeline import ingest as run_ingest

    cfg = load_config(config)
    if workers is not None:
        cfg.ingest.workers = workers
    if bool(dicomweb) != bool(study):
        raise RagError("give --dicomweb URL together with one or more --study UID (`rag pacs search` lists them)")
    if not paths and not dicomweb:
        raise RagError("give files or folders to ingest, or --dicomweb URL --study UID")
    fetched = None
    if dicomweb:
        from rag.ingest.dicomweb import fetch_study

        fetched = cfg.home / "uploads" / f"dicomweb-{uuid.uuid4().hex}"
        for uid in study or []:
            n = len(fetch_study(dicomweb, uid, fetched / f"{len(list(fetched.glob('*')))}"))
            typer.echo(f"fetched study {uid}: {n} instances")
    try:
        report = run_ingest(
            [*(paths or []), *([fetched] if fetched else [])], cfg, progress=progress and sys.stderr.isatty()
        )
    finally:
        if fetched is not None:
            shutil.rmtree(fetched, ignore_errors=True)
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
@friendly
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


@app.command()
@friendly
def train(
    out: Annotated[Path, typer.Option(help="Folder for checkpoints (epoch-NNN.pt and last.pt).")] = Path("checkpoints"),
    encoder: Annotated[str, typer.Option(help="Registry name of the encoder (see `rag encoders`).")] = DEFAULT_ENCODER,
    epochs: Annotated[int, typer.Option(min=1)] = 40,
    batch_size: Annotated[int, typer.Option(min=2)] = 32,
    lr: Annotated[float, typer.Option(min=0.0)] = 2e-3,
    val_fraction: Annotated[float, typer.Option(help="Share of patients held out.")] = 0.2,
    seed: int = 0,
    device: Annotated[str, typer.Option(help="torch device: cpu, cuda, cuda:1, ...")] = "cpu",
    workers: Annotated[int, typer.Option(min=0, help="Data-loading worker processes.")] = 1,
    resume: Annotated[bool, typer.Option(help="Continue from OUT/last.pt.")] = False,
    finding_temperature: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Soft clip->report targets: reports whose finding grades agree with the clip's are positives "
            "too, weighted exp(-grade difference / T). 0: only the clip's own report text.",
        ),
    ] = 0.5,
    augment: Annotated[
        bool, typer.Option(help="Randomly vary gain, gamma, zoom, shift and rotation of training clips.")
    ] = True,
    finding_loss_weight: Annotated[
        float, typer.Option(min=0.0, help="Weight of the finding and measurement heads' loss (0: no heads).")
    ] = 4.0,
    schedule: Annotated[
        str, typer.Option(help="Learning rate over the run: cosine (decays to 0) or constant.")
    ] = "cosine",
    stop_after: Annotated[
        int | None,
        typer.Option(min=1, help="End after this epoch; `--resume` later finishes the same run and schedule."),
    ] = None,
    cache: Annotated[
        bool,
        typer.Option(
            help="Decode every clip once into a memory-mapped uint8 cache under <home>/cache and train from it "
            "(no file decoding per step)."
        ),
    ] = True,
    section_loss_weight: Annotated[float, typer.Option(min=0.0, help="Weight of the clip<->section loss.")] = 0.5,
    text_loss_weight: Annotated[float, typer.Option(min=0.0, help="Weight of the report<->report loss.")] = 0.5,
    config: ConfigOpt = None,
) -> None:
    """Train an encoder on the stored clips and reports: contrastive losses, views, finding and measurement heads.

    Prints one line per epoch with held-out figures and saves a checkpoint per epoch.
    """
    from rag.core.config import load_config
    from rag.store import open_store
    from rag.train.loop import TrainConfig
    from rag.train.loop import train as run_train

    cfg = load_config(config)
    store = open_store(cfg.db_url)
    try:
        tc = TrainConfig(
            encoder=encoder,
            out=out,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            val_fraction=val_fraction,
            seed=seed,
            device=device,
            workers=workers,
            resume=resume,
            finding_temperature=finding_temperature,
            augment=augment,
            finding_loss_weight=finding_loss_weight,
            schedule=schedule,
            stop_after=stop_after,
            progress=sys.stderr.isatty(),
            cache_dir=cfg.home / "cache" if cache else None,
            section_loss_weight=section_loss_weight,
            text_loss_weight=text_loss_weight,
        )
        result = run_train(store, cfg.media_dir, tc, log_line=typer.echo)
    finally:
        store.close()
    typer.echo(f"checkpoint: {result.checkpoint} sha256={result.sha256}")


@app.command()
@friendly
def embed(
    checkpoint: Annotated[Path, typer.Option(help="Encoder checkpoint (from `rag train`).")],
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    device: Annotated[str, typer.Option(help="torch device: cpu, cuda, ...")] = "cpu",
    engine: Annotated[str, typer.Option(help="local (default) or ray (decode tasks + encoder actors).")] = "local",
    address: Annotated[str | None, typer.Option(help="ray: a running cluster (default: start a local one).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="ray: encoder actors (and local CPUs).")] = 2,
    gpus_per_worker: Annotated[float, typer.Option(min=0.0, help="ray: GPUs per encoder actor.")] = 0.0,
    config: ConfigOpt = None,
) -> None:
    """Embed every stored clip, still and report section with one encoder checkpoint."""
    from rag.core.config import load_config
    from rag.core.errors import RagError
    from rag.encoders import load_checkpoint
    from rag.encoders.embed import embed_store, embeddings_dir
    from rag.store import open_store

    if engine not in ("local", "ray"):
        raise RagError(f"unknown engine {engine!r}; use local or ray")
    cfg = load_config(config)
    model, info = load_checkpoint(checkpoint, device=device)
    store = open_store(cfg.db_url)
    root = cfg.home / "embeddings"
    media_engine = None
    if engine == "ray":
        from rag.encoders.distributed import ray_engine

        media_engine = ray_engine(
            checkpoint,
            embeddings_dir(root, model.spec.name, info.sha256),
            model.spec.preprocessing.model_dump(mode="json"),
            address=address,
            workers=workers,
            batch_size=batch_size,
            gpus_per_worker=gpus_per_worker,
        )
    try:
        counts = embed_store(
            store,
            cfg.media_dir,
            root,
            model,
            info.sha256,
            batch_size=batch_size,
            progress=sys.stderr.isatty(),
            media_engine=media_engine,
        )
        if engine == "ray":
            import shutil

            shutil.rmtree(embeddings_dir(root, model.spec.name, info.sha256) / "ray-parts", ignore_errors=True)
    finally:
        store.close()
    typer.echo(" ".join(f"{k}={v}" for k, v in counts.items()))
    typer.echo(f"embeddings: {embeddings_dir(root, model.spec.name, info.sha256)}")


@app.command("encoders")
@friendly
def encoders_list() -> None:
    """List the encoders of the registry."""
    from rag.encoders import get_spec, list_encoders

    for name in list_encoders():
        spec = get_spec(name)
        typer.echo(f"{name:20s} dim={spec.embed_dim:<4d} {spec.description}")


@app.command("config")
@friendly
def show_config(config: ConfigOpt = None) -> None:
    """Print the resolved configuration (secrets hidden)."""
    from rag.core.config import load_config

    cfg = load_config(config)
    typer.echo(json.dumps(cfg.model_dump(mode="json"), indent=2))


@store_app.command("info")
@friendly
def store_info(config: ConfigOpt = None) -> None:
    """Print how many rows each table of the case store holds."""
    from sqlalchemy import func, select

    from rag.core.config import load_config
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


@app.command()
@friendly
def demo(
    patients: Annotated[int, typer.Option(min=3, help="Simulated patients (1-4 studies each).")] = 48,
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs when no checkpoint exists yet.")] = 40,
    held_out: Annotated[
        int, typer.Option(min=1, help="Which held-out patient's study to draft (those with a prior first).")
    ] = 1,
    workers: Annotated[int, typer.Option(min=1, help="Processes for simulation and ingestion.")] = 2,
    seed: int = 0,
    config: ConfigOpt = None,
) -> None:
    """The main job: simulate, ingest, train, embed, index, fit weights, add the KB, draft a held-out study."""
    from rag.core.config import load_config
    from rag.demo import DemoOptions, run_demo

    cfg = load_config(config)
    opts = DemoOptions(patients=patients, seed=seed, epochs=epochs, workers=workers, held_out=held_out)
    run_demo(cfg, opts, echo=typer.echo)
