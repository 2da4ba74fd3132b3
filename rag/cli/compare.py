"""``rag compare STUDY [--prior STUDY]``, ``rag compare-fit`` and ``rag eval compare``.

Heavy libraries load inside the commands so ``rag --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from rag.cli.common import ConfigOpt, friendly

__all__ = ["compare_cmd", "compare_fit_cmd", "eval_compare_cmd", "eval_cxr_change_cmd"]

CheckpointOpt = Annotated[
    Path | None, typer.Option(help="Encoder checkpoint (default: <workspace>/checkpoints/last.pt).")
]


@friendly
def compare_cmd(
    study: Annotated[str, typer.Argument(help="The current study: a stored study ID or a folder of DICOMs.")],
    prior: Annotated[
        str | None, typer.Option(help="The study to compare with (default: the patient's most recent earlier one).")
    ] = None,
    out: Annotated[
        list[Path] | None, typer.Option("--out", "-o", help="Write the comparison here (.md, .json or .html).")
    ] = None,
    ground_truth: Annotated[
        bool, typer.Option(help="Show the current study's own stored comparison line beside it (evaluation).")
    ] = False,
    generator: Annotated[
        str, typer.Option("--generator", "-g", help="extractive (default) or openai (the configured server).")
    ] = "extractive",
    checkpoint: CheckpointOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Compare a study with the patient's prior one: measurement deltas, finding calls, cited evidence."""
    from rag.compare.comparer import Comparer
    from rag.compare.prior import comparison_text
    from rag.core.config import load_config
    from rag.draft.studies import ground_truth_text
    from rag.render.comparison import comparison_markdown, write_comparison

    cfg = load_config(config)
    comparer = Comparer(config=cfg, checkpoint=checkpoint)
    result = comparer.compare(study, prior, generator=generator)
    reference = (
        comparison_text(ground_truth_text(comparer.drafter.store, result.current_study_id)) if ground_truth else None
    )
    typer.echo(comparison_markdown(result, reference=reference))
    for path in out or []:
        written = write_comparison(result, path, media_dir=cfg.media_dir, reference=reference)
        typer.echo(f"wrote {written}", err=not sys.stdout.isatty())


def _held_out_patients(comparer: object, checkpoint: Path) -> set[int]:
    from rag.compare.comparer import Comparer
    from rag.draft.studies import held_out_studies

    assert isinstance(comparer, Comparer)
    studies = held_out_studies(checkpoint, comparer.drafter.store, latest_only=False)
    catalog = comparer.drafter.retriever.catalog
    return {catalog.study(s).patient_id for s in studies if s in set(catalog.study_ids.tolist())}


@friendly
def compare_fit_cmd(
    held_out_of: Annotated[
        Path | None,
        typer.Option(help="Leave out the patients this checkpoint's training held out (default: the one compared)."),
    ] = None,
    max_false_alarm: Annotated[float, typer.Option(min=0.0, max=0.5)] = 0.04,
    checkpoint: CheckpointOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Fit the change thresholds on the reported follow-up pairs of the encoder's training patients."""
    from rag.compare.comparer import CHANGE_FILE, Comparer
    from rag.compare.fit import fit_change_model, patient_pairs
    from rag.core.config import load_config

    cfg = load_config(config)
    comparer = Comparer(config=cfg, checkpoint=checkpoint)
    held = _held_out_patients(comparer, held_out_of or comparer.drafter.checkpoint)
    catalog = comparer.drafter.retriever.catalog
    studies = [int(s) for s in catalog.study_ids if int(s) in comparer.drafter.retriever.studies]
    patients = {catalog.study(s).patient_id for s in studies} - held
    pairs = patient_pairs(catalog, studies, patients)
    model = fit_change_model(comparer, pairs, max_false_alarm=max_false_alarm)
    path = model.save(cfg.home / CHANGE_FILE)
    typer.echo(f"{model.fitted_on} ({len(held)} held-out patients left out); {model.pair_k} change pairs per section")
    for name, rule in sorted(model.rules.items()):
        if rule.changes:
            typer.echo(
                f"  {name:26s} lam={rule.lam:<4g} tau={rule.tau:.3f} accuracy={rule.accuracy:.3f} "
                f"false alarms={rule.false_alarm:.3f} ({rule.changes} changes in {rule.n} pairs)"
            )
    typer.echo(f"wrote {path}")


@friendly
def eval_compare_cmd(
    archive: Annotated[Path, typer.Option(help="The simulated archive folder (with truth/studies.csv).")],
    held_out_of: Annotated[Path, typer.Option(help="Score the patients this checkpoint's training held out.")],
    out: Annotated[Path | None, typer.Option(help="Write comparison.json, comparison.md and an example here.")] = None,
    checkpoint: CheckpointOpt = None,
    seed: int = 0,
    config: ConfigOpt = None,
) -> None:
    """The comparison benchmark: calls, LVEF change and TemMed-Bench's three forms, retrieval on and off."""
    from rag.compare.comparer import Comparer
    from rag.compare.prior import comparison_text
    from rag.core.config import load_config
    from rag.core.errors import RagError
    from rag.draft.studies import ground_truth_text
    from rag.eval.compare import evaluate_comparison, lvef_fall_example, write_benchmark
    from rag.eval.retrieval import truth_by_study
    from rag.ingest.pipeline import resolve_key
    from rag.render.comparison import write_comparison

    cfg = load_config(config)
    comparer = Comparer(config=cfg, checkpoint=checkpoint or held_out_of)
    held = _held_out_patients(comparer, held_out_of)
    if not held:
        raise RagError(
            f"{held_out_of} records no held-out patient with stored studies: score a checkpoint trained with a "
            "held-out split (`rag train --val-fraction 0.3`)"
        )
    truth = truth_by_study(comparer.drafter.retriever, archive, resolve_key(cfg))
    bench, cases = evaluate_comparison(comparer, truth, held, seed=seed, echo=typer.echo)
    typer.echo(bench.markdown())
    if out is not None:
        for path in write_benchmark(bench, out):
            typer.echo(f"wrote {path}")
        example = lvef_fall_example(cases)
        if example is not None:
            reference = comparison_text(ground_truth_text(comparer.drafter.store, example.current))
            for name in ("lvef-fall.html", "lvef-fall.md"):
                path = write_comparison(example.comparison, out / name, media_dir=cfg.media_dir, reference=reference)
                typer.echo(f"wrote {path}")


@friendly
def eval_cxr_change_cmd(
    data: Annotated[Path, typer.Option(help="The NIH ChestX-ray14 folder (labels.csv and the images).")],
    out: Annotated[Path | None, typer.Option(help="Write cxr-change.json and cxr-change.md here.")] = None,
    components: Annotated[int, typer.Option(min=2, help="Principal components of the image tower.")] = 64,
    k: Annotated[int, typer.Option(min=1, help="Training visit pairs that vote on a change.")] = 15,
    seed: int = 0,
) -> None:
    """Change between chest X-ray visits on real images: AUROC of "did the findings change?" on held-out
    patients, and per label new / resolved."""
    from rag.eval.cxr_change import evaluate_cxr_change

    result = evaluate_cxr_change(data, components=components, k=k, seed=seed)
    typer.echo(result.markdown())
    if out is not None:
        for path in result.write(out):
            typer.echo(f"wrote {path}")
