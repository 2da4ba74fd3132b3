"""``rag pacs search``: studies on a PACS over DICOMweb (QIDO-RS); ``rag ingest --dicomweb`` fetches them."""

from __future__ import annotations

from typing import Annotated

import typer

from rag.cli.common import friendly

__all__ = ["pacs_app"]

pacs_app = typer.Typer(help="A PACS over DICOMweb: search its studies (fetch with `rag ingest --dicomweb`).")


@pacs_app.command("search")
@friendly
def search_cmd(
    dicomweb: Annotated[str, typer.Option(help="The PACS's DICOMweb root (e.g. http://127.0.0.1:8042/dicom-web).")],
    patient: Annotated[str | None, typer.Option(help="Patient ID.")] = None,
    date: Annotated[str | None, typer.Option(help="Study date YYYYMMDD or range YYYYMMDD-YYYYMMDD.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
) -> None:
    """List studies: UID, date, modalities, instance count, description."""
    from rag.ingest.dicomweb import search_studies

    found = search_studies(dicomweb, patient=patient, date=date, limit=limit)
    for s in found:
        modalities = ",".join(s.modalities) or "-"
        count = s.instances if s.instances is not None else "?"
        typer.echo(f"{s.study_uid}  {s.date or '-':8s}  {modalities:8s} {count:>4} instances  {s.description or ''}")
    typer.echo(f"{len(found)} studies")
