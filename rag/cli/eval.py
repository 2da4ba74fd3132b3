"""``rag eval ...`` commands: quality figures on held-out patients.

``rag eval retrieval`` (also ``rag retrieve evaluate``) scores the neighbour votes of uniform, default
and learned view weights against a simulated archive's truth; ``rag eval vqa`` scores an answerer on a
medical VQA suite (``rag.eval.vqa``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rag.cli.common import ConfigOpt, friendly
from rag.cli.retrieve import EmbeddingsOpt, open_retriever, weights_table
from rag.cli.vqa import vqa_cmd

eval_app = typer.Typer(help="Quality figures on held-out patients, each beside its baseline.", no_args_is_help=True)
eval_app.command("vqa")(vqa_cmd)


@eval_app.command("retrieval")
@friendly
def evaluate_cmd(
    embeddings: EmbeddingsOpt,
    archive: Annotated[Path, typer.Option(help="The simulated archive folder (with truth/studies.csv).")],
    learned: Annotated[Path | None, typer.Option(help="A learned weight file (default: fit one now).")] = None,
    k: Annotated[int, typer.Option(min=1)] = 50,
    seed: int = 0,
    test_fraction: Annotated[float, typer.Option(min=0.05, max=0.9)] = 0.3,
    val_fraction: Annotated[float, typer.Option(min=0.0, max=0.9)] = 0.2,
    steps: Annotated[int, typer.Option(min=1, help="Fitting steps when no learned table is given.")] = 150,
    temperature: Annotated[
        float | None, typer.Option(min=1e-4, help="Softmax vote weighting (default: similarity weights).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    out: Annotated[
        Path | None, typer.Option(help="Also write evaluation.json, evaluation.md and SVG plots into this folder.")
    ] = None,
    drafts: Annotated[
        bool, typer.Option("--drafts", help="Also draft every test study and score it against its own report.")
    ] = False,
    criterion: Annotated[
        str, typer.Option(help="Drafts: how the 'abnormal' vote threshold is fitted: accuracy, youden or f1.")
    ] = "accuracy",
    moderate_criterion: Annotated[
        str, typer.Option(help="Drafts: how the 'moderate or worse' threshold is fitted: youden, f1, accuracy or none.")
    ] = "youden",
    held_out_of: Annotated[
        Path | None,
        typer.Option(
            "--held-out-of",
            help="An encoder checkpoint: test on the patients its training held out (whose reports it never saw).",
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Score uniform, default and learned weights on held-out patients of an ingested simulated archive."""
    from rag.core.config import load_config
    from rag.core.errors import RetrievalError
    from rag.eval.retrieval import evaluate_archive
    from rag.ingest.pipeline import resolve_key

    cfg = load_config(config)
    test_patients = None
    if held_out_of is not None:
        from rag.encoders.checkpoint import read_checkpoint

        test_patients = list((read_checkpoint(held_out_of).get("extra") or {}).get("val_patients") or [])
        if not test_patients:
            raise RetrievalError(f"{held_out_of} records no held-out patients; leave out --held-out-of")
    with open_retriever(config, embeddings, "default", "flat") as retriever:
        report = evaluate_archive(
            retriever,
            archive,
            pseudonym_key=resolve_key(cfg),
            learned=weights_table(str(learned)) if learned is not None else None,
            test_fraction=test_fraction,
            val_fraction=val_fraction,
            seed=seed,
            k=k,
            temperature=temperature,
            fit_options={"steps": steps},
            test_patients=test_patients,
        )
        quality = None
        if drafts and report.learned is not None:
            from rag.eval.drafts import draft_quality
            from rag.retrieve.voting import NeighbourVoter, fit_thresholds

            searcher = retriever.with_weights(report.learned).restricted(report.reference_studies)
            thresholds = None
            if report.validation_studies:  # as `rag retrieve fit-view-weights` does: on patients apart from the test
                voter = NeighbourVoter(searcher, k=k)
                moderate = None if moderate_criterion == "none" else moderate_criterion
                thresholds = fit_thresholds(
                    voter, report.validation_studies, criterion=criterion, moderate_criterion=moderate
                )
            quality = draft_quality(
                searcher, report.test_studies, report.reference_studies, vote_k=k, thresholds=thresholds
            )
    typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.text())
    if quality is not None:
        typer.echo("\n".join(quality.lines()))
    if out is not None:
        from rag.eval.outputs import write_evaluation

        for path in write_evaluation(report, out, drafts=quality):
            typer.echo(f"wrote {path}")


@eval_app.command("probe")
@friendly
def probe_cmd(
    archive: Annotated[
        Path, typer.Option(help="The simulated archive folder (with truth/), ingested in the workspace.")
    ],
    epochs: Annotated[int, typer.Option(min=1)] = 8,
    frames: Annotated[int, typer.Option(min=2, help="Frames per clip (subsampled evenly).")] = 8,
    size: Annotated[int, typer.Option(min=16, help="Frame size in pixels.")] = 64,
    test_fraction: Annotated[float, typer.Option(min=0.05, max=0.9)] = 0.3,
    seed: int = 0,
    out: Annotated[Path | None, typer.Option(help="Write the table as Markdown to this file.")] = None,
    config: ConfigOpt = None,
) -> None:
    """The ceiling per finding: a supervised probe on the archive's truth labels, scored on held-out patients."""
    from rag.core.config import load_config
    from rag.ingest.pipeline import resolve_key
    from rag.store import open_store
    from rag.train.probe import ProbeConfig, build_probe_data, describe, train_probe

    cfg = load_config(config)
    settings = ProbeConfig(frames=frames, size=size, epochs=epochs, test_fraction=test_fraction, seed=seed)
    store = open_store(cfg.db_url)
    try:
        data = build_probe_data(store, cfg.media_dir, archive, resolve_key(cfg), cfg.home / "cache", settings)
    finally:
        store.close()
    typer.echo(f"{len(data.clip_ids)} clips of {len(set(data.study.tolist()))} studies")
    result = train_probe(data, settings, echo=typer.echo)
    text = "\n".join(describe(result, settings))
    typer.echo(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
        typer.echo(f"wrote {out}")
