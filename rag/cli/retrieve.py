"""``rag retrieve ...`` commands: fit the view weights and vote thresholds, retrieve cases, predict.

Mounted on the main command line as ``app.add_typer(retrieve_app, name="retrieve")``. Heavy
libraries load inside the commands, so ``rag --help`` stays fast.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from rag.cli.common import ConfigOpt, friendly

if TYPE_CHECKING:
    from rag.retrieve.retriever import CaseRetriever
    from rag.retrieve.study import IndexKind
    from rag.retrieve.weights import ViewWeights

retrieve_app = typer.Typer(
    help="View-informed case retrieval: fit view weights and vote thresholds, retrieve cases, predict, evaluate.",
    no_args_is_help=True,
)


EmbeddingsOpt = Annotated[
    Path, typer.Option("--embeddings", "-e", help="Embeddings folder written by `rag embed` (encoder@sha).")
]
WeightsOpt = Annotated[
    str,
    typer.Option("--weights", "-w", help="Section x view table: 'default', 'uniform' or a .yaml/.csv file."),
]
IndexKindOpt = Annotated[str, typer.Option("--index-kind", help="auto, flat, hnsw, ivf_flat or ivf_pq.")]
_INDEX_KINDS = ("auto", "flat", "hnsw", "ivf_flat", "ivf_pq")


def weights_table(spec: str) -> ViewWeights:
    from rag.retrieve.weights import ViewWeights

    return ViewWeights.from_spec(spec)


LibraryEmbeddingsOpt = Annotated[
    Path | None,
    typer.Option(
        "--embeddings",
        "-e",
        help="Search a `rag embed` folder (indexes built in memory) instead of the workspace's case library.",
    ),
]


@contextmanager
def open_retriever(
    config: Path | None, embeddings: Path | None, weights: str, index_kind: str
) -> Iterator[CaseRetriever]:
    """A retriever over ``embeddings`` (indexes built in memory), or else over the workspace's case library
    (``<workspace>/indexes/library``: opened as saved, refused when stale or of another checkpoint)."""
    from rag.core.config import load_config
    from rag.core.errors import RetrievalError
    from rag.retrieve.retriever import CaseRetriever
    from rag.store import open_store

    if index_kind not in _INDEX_KINDS:
        raise RetrievalError(f"unknown index kind {index_kind!r}; use one of {list(_INDEX_KINDS)}")
    table = weights_table(weights)
    cfg = load_config(config)
    store = open_store(cfg.db_url)
    try:
        if embeddings is not None:
            yield CaseRetriever(store, embeddings, table, index_kind=cast("IndexKind", index_kind))
        else:
            from rag.index.library import LIBRARY_DIR, CaseLibrary

            library = CaseLibrary.open(cfg.indexes_dir / LIBRARY_DIR, store=store)
            yield CaseRetriever(store, weights=table, library=library)
    finally:
        store.close()


@retrieve_app.command("fit-view-weights")
@friendly
def fit_view_weights_cmd(
    embeddings: EmbeddingsOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the learned table (.yaml or .csv).")],
    start: Annotated[str, typer.Option(help="Starting table: 'default', 'uniform' or a file.")] = "default",
    val_fraction: Annotated[float, typer.Option(min=0.0, max=0.9, help="Share of patients held out.")] = 0.25,
    seed: int = 0,
    steps: Annotated[int, typer.Option(min=1, help="Gradient steps per section.")] = 150,
    temperature: Annotated[float, typer.Option(min=1e-4, help="Softmax temperature of the soft retrieval.")] = 0.05,
    hard: Annotated[bool, typer.Option("--hard/--soft", help="Weight clips by their argmax view only.")] = False,
    thresholds: Annotated[
        bool, typer.Option(help="Also fit vote thresholds on the held-out patients and write them beside OUT.")
    ] = True,
    k: Annotated[int, typer.Option(min=1, help="Neighbours per section for the vote thresholds.")] = 50,
    held_out_of: Annotated[
        Path | None,
        typer.Option(
            help="An encoder checkpoint: leave the patients its training held out out of the search and the fit "
            "(so that they can be drafted or evaluated by parts that never saw them)."
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Learn the section x view weight table from the stored archive and write it as a plain file."""
    from rag.retrieve.calibrate import calibrate
    from rag.retrieve.thresholds import thresholds_path

    excluded: list[str] = []
    if held_out_of is not None:
        from rag.encoders.checkpoint import read_checkpoint

        excluded = list((read_checkpoint(held_out_of).get("extra") or {}).get("val_patients") or [])
    with open_retriever(config, embeddings, start, "flat") as retriever:
        retriever.hard_views = hard
        done = calibrate(
            retriever,
            exclude_patients=excluded,
            val_fraction=val_fraction,
            seed=seed,
            k=k,
            thresholds=thresholds,
            progress=typer.echo if sys.stderr.isatty() else None,
            steps=steps,
            temperature=temperature,
            hard=hard,
        )
        result = done.fit
        path = result.weights.save(out, header=result.lines())
        typer.echo(result.table())
        for line in result.lines():
            typer.echo(line)
        if done.excluded_studies:
            typer.echo(f"left out: {done.excluded_studies} studies of {len(excluded)} held-out patients")
        typer.echo(f"weights: {path}")
        if done.thresholds is not None:
            fitted = done.thresholds
            written = fitted.save(thresholds_path(path))
            typer.echo(f"thresholds: {written} ({len(fitted.values)} findings, {len(fitted.skipped)} skipped)")


@retrieve_app.command("fit-thresholds")
@friendly
def fit_thresholds_cmd(
    embeddings: EmbeddingsOpt,
    weights: Annotated[Path, typer.Option("--weights", "-w", help="The weight file; thresholds are written beside.")],
    val_fraction: Annotated[float, typer.Option(min=0.01, max=1.0, help="Share of patients to fit on.")] = 0.25,
    seed: int = 0,
    k: Annotated[int, typer.Option(min=1)] = 50,
    criterion: Annotated[str, typer.Option(help="Threshold of 'abnormal': accuracy, youden or f1.")] = "accuracy",
    moderate_criterion: Annotated[
        str, typer.Option(help="Threshold of 'moderate or worse': youden, f1, accuracy or none.")
    ] = "youden",
    config: ConfigOpt = None,
) -> None:
    """Fit the findings' vote thresholds on a validation split of patients (labels: their own reports)."""
    from rag.retrieve.fit import split_patients
    from rag.retrieve.thresholds import thresholds_path
    from rag.retrieve.voting import NeighbourVoter, fit_thresholds

    with open_retriever(config, embeddings, str(weights), "flat") as retriever:
        catalog = retriever.catalog
        usable = {s: catalog.studies[s].patient_id for s in catalog.studies if s in retriever.studies}
        val, _ = split_patients(usable, (val_fraction,), seed=seed)
        voter = NeighbourVoter(retriever, k=k)
        moderate = None if moderate_criterion == "none" else moderate_criterion
        fitted = fit_thresholds(voter, val, criterion=criterion, moderate_criterion=moderate)
        path = fitted.save(thresholds_path(weights))
    for name, value in fitted.values.items():
        pos, neg = fitted.support[name]
        line = f"{name:28s} threshold {value:.3f} {criterion} {fitted.scores[name]:.3f} ({pos}+/{neg}-)"
        if name in fitted.moderate:
            line += f"; moderate or worse at {fitted.moderate[name]:.3f} ({moderate_criterion})"
        typer.echo(line)
    for name, why in fitted.skipped.items():
        typer.echo(f"{name:28s} skipped: {why}")
    typer.echo(f"thresholds: {path}")


def _date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        from rag.core.errors import RetrievalError

        raise RetrievalError(f"--before {value!r} is not a date; use YYYY-MM-DD") from None


@retrieve_app.command("cases")
@friendly
def cases_cmd(
    study: Annotated[int, typer.Argument(help="Study row ID of the query study.")],
    embeddings: LibraryEmbeddingsOpt = None,
    weights: WeightsOpt = "default",
    k: Annotated[int, typer.Option(min=1, help="Hits per section.")] = 3,
    before: Annotated[str | None, typer.Option(help="Only studies dated before YYYY-MM-DD.")] = None,
    view: Annotated[list[str] | None, typer.Option(help="Only studies with a clip of this view (repeatable).")] = None,
    same_patient: Annotated[bool, typer.Option(help="Allow the query patient's other studies.")] = False,
    mmr: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="MMR lambda (1 = plain ranking).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    index_kind: IndexKindOpt = "auto",
    config: ConfigOpt = None,
) -> None:
    """Retrieve the nearest report sections of other studies for every section of a study."""
    with open_retriever(config, embeddings, weights, index_kind) as retriever:
        result = retriever.retrieve(
            study,
            k,
            exclude_same_patient=not same_patient,
            before_date=_date(before),
            views=set(view) if view else None,
            mmr_lambda=mmr,
        )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    for section, hits in result.sections.items():
        typer.echo(f"{section} ({result.candidates[section]} candidates)")
        for hit in hits:
            typer.echo(f"  {hit.rank}. study {hit.study_id} section {hit.report_section_id} sim {hit.similarity:.3f}")
            typer.echo(f"     {hit.text}")
    if result.no_evidence:
        typer.echo(f"no evidence (no clip of an informing view): {', '.join(result.no_evidence)}")


@retrieve_app.command("predict")
@friendly
def predict_cmd(
    study: Annotated[int, typer.Argument(help="Study row ID of the query study.")],
    embeddings: LibraryEmbeddingsOpt = None,
    weights: WeightsOpt = "default",
    k: Annotated[int, typer.Option(min=1, help="Neighbours per section.")] = 50,
    thresholds: Annotated[Path | None, typer.Option(help="Thresholds JSON (default: beside the weight file).")] = None,
    temperature: Annotated[
        float | None, typer.Option(min=1e-4, help="Softmax vote weighting (default: similarity weights).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the predictions as JSON.")] = False,
    index_kind: IndexKindOpt = "auto",
    config: ConfigOpt = None,
) -> None:
    """Predict measurements and findings of a study by neighbour votes, each from its own section."""
    from rag.retrieve.thresholds import Thresholds, thresholds_path
    from rag.retrieve.voting import NeighbourVoter

    fitted = None
    if thresholds is not None:
        fitted = Thresholds.load(thresholds)
    elif weights not in ("default", "uniform") and thresholds_path(weights).is_file():
        fitted = Thresholds.load(thresholds_path(weights))
    with open_retriever(config, embeddings, weights, index_kind) as retriever:
        result = NeighbourVoter(retriever, k=k, thresholds=fitted, temperature=temperature).predict(study)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    for p in result.predictions.values():
        top = ", ".join(f"{sid}:{sim:.2f}" for sid, sim in p.neighbours[:3])
        if p.value is None:
            typer.echo(f"{p.name:26s} -  ({p.note})")
        elif p.kind == "continuous":
            typer.echo(f"{p.name:26s} {p.value:7.2f} {p.unit or ''}  [{p.section}; n={len(p.neighbours)}; {top}]")
        else:
            flag = "" if p.positive is None else (" positive" if p.positive else " negative")
            typer.echo(f"{p.name:26s} p={p.probability:.2f}{flag}  [{p.section}; n={len(p.neighbours)}; {top}]")
