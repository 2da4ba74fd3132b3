"""``rag eval vqa``: a medical VQA suite scored as its official script scores it (or corrected)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rag.cli.common import friendly


@friendly
def vqa_cmd(
    suite: Annotated[
        str,
        typer.Option(
            help="Suite: vqa-rad, slake, pathvqa, gmai-mmbench, medbookvqa, smmile, temmed (change VQA), "
            "temmed-report or temmed-pairs."
        ),
    ],
    data: Annotated[Path, typer.Option(help="The suite's folder (its documented files).")],
    answerer: Annotated[
        str, typer.Option(help="retrieval (default), question-nn, majority or openai (a served model).")
    ] = "retrieval",
    scoring: Annotated[
        str, typer.Option(help="corrected (default) or official (the suite's own script, defects included).")
    ] = "corrected",
    leakage: Annotated[
        str, typer.Option(help="When a test image or patient is in the corpus: refuse, exclude or allow.")
    ] = "refuse",
    k: Annotated[int, typer.Option(min=1, help="Neighbours that vote (retrieval answerers).")] = 1,
    image_weight: Annotated[float, typer.Option(min=0.0, help="Image similarity weight beside the question's.")] = 1.0,
    out: Annotated[Path | None, typer.Option(help="Folder for the response cache and results.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Answer at most this many new items.")] = None,
    arm: Annotated[
        str, typer.Option(help="openai answerer: no-rag, rag (numbered reference cases first) or both, compared.")
    ] = "both",
    base_url: Annotated[str | None, typer.Option(help="openai answerer: the server (default: llm.base_url).")] = None,
    model: Annotated[str | None, typer.Option(help="openai answerer: the served model (default: llm.model).")] = None,
    images: Annotated[
        bool, typer.Option(help="openai answerer: send the images (--no-images for text-only models).")
    ] = True,
    workers: Annotated[int, typer.Option(min=1, help="Questions in flight at once (a server batches them).")] = 1,
    judge_url: Annotated[
        str | None, typer.Option(help="An OpenAI-compatible judge of open answers, reported beside exact match.")
    ] = None,
    judge_model: Annotated[str | None, typer.Option(help="The judge's served model (default: llm.model).")] = None,
    bertscore_model: Annotated[
        Path | None, typer.Option(help="Report tasks: also BERTScore F1 with this local model folder.")
    ] = None,
) -> None:
    """Evaluate an answerer on a suite's test split; its training split is the retrieval corpus."""
    from rag.eval.vqa.harness import VQARun, evaluate_vqa

    run = VQARun(
        suite,
        data,
        answerer,
        scoring,
        leakage,
        k,
        image_weight,
        out,
        limit,
        arm,
        base_url,
        model,
        images,
        workers=workers,
        judge_url=judge_url,
        judge_model=judge_model,
        bertscore_model=bertscore_model,
    )
    report = evaluate_vqa(run, echo=typer.echo)
    typer.echo(report.markdown())
