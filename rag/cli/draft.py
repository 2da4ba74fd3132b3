"""``rag draft``: draft a study's report and write it as Markdown, JSON and/or HTML.

Registered on the main command line as ``app.command("draft")(draft_cmd)``; heavy libraries load
inside the command so ``rag --help`` stays fast.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from rag.cli.common import ConfigOpt, friendly
from rag.draft.studies import ground_truth_text, held_out_studies

if TYPE_CHECKING:
    pass

__all__ = ["draft_cmd"]


@friendly
def draft_cmd(
    study: Annotated[
        str | None, typer.Argument(help="A stored study ID, or a folder of DICOMs to ingest and draft.")
    ] = None,
    held_out: Annotated[
        int | None,
        typer.Option("--held-out", min=1, help="Draft the Nth study of the patients the encoder's training held out."),
    ] = None,
    generator: Annotated[str, typer.Option("--generator", "-g", help="extractive (default) or openai.")] = "extractive",
    out: Annotated[
        list[Path] | None,
        typer.Option("--out", "-o", help="Write the report here (.md, .json or .html); repeatable."),
    ] = None,
    ground_truth: Annotated[
        bool, typer.Option(help="Show the study's own stored report beside the draft (evaluation).")
    ] = False,
    k: Annotated[int, typer.Option(min=1, help="Retrieved report sections per section.")] = 5,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Encoder checkpoint (default: <workspace>/checkpoints/last.pt).")
    ] = None,
    before: Annotated[str | None, typer.Option(help="Only draw on studies dated before this day (YYYY-MM-DD).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Draft a study's report from the nearest prior cases; print it as Markdown and write files."""
    from rag.core.config import load_config
    from rag.draft.drafter import Drafter, DraftingError, GeneratorName
    from rag.render import render_markdown, write_report

    if (study is None) == (held_out is None):
        raise DraftingError("give either a STUDY (ID or DICOM folder) or --held-out N")
    if generator not in ("extractive", "openai"):
        raise DraftingError(f"unknown generator {generator!r}; use 'extractive' or 'openai'")
    before_date = dt.date.fromisoformat(before) if before else None
    cfg = load_config(config)
    drafter = Drafter(cfg, checkpoint=checkpoint, k=k)
    if held_out is not None:
        candidates = held_out_studies(drafter.checkpoint, drafter.store)
        if len(candidates) < held_out:
            raise DraftingError(
                f"the checkpoint's training held out {len(candidates)} patients' studies; --held-out {held_out} "
                "is out of range"
            )
        target: int | str = candidates[held_out - 1]
    else:
        target = cast("str", study)
    report = drafter.draft(target, generator=cast("GeneratorName", generator), before_date=before_date)
    truth = ground_truth_text(drafter.store, report.study_id) if ground_truth else None
    typer.echo(render_markdown(report, ground_truth=truth))
    for path in out or []:
        written = write_report(report, path, media_dir=cfg.media_dir, store=drafter.store, ground_truth=truth)
        typer.echo(f"wrote {written}", err=not sys.stdout.isatty())
