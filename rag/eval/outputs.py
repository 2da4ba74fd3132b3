"""Writing an evaluation where a person can read it: JSON, a Markdown table and SVG plots."""

from __future__ import annotations

import json
from pathlib import Path

from rag.core.clipfile import write_atomic
from rag.eval.drafts import DraftQuality
from rag.eval.plots import roc_grid, scatter
from rag.eval.retrieval import EvaluationReport
from rag.vocab.findings import PHENOTYPES

__all__ = ["write_evaluation"]


def write_evaluation(report: EvaluationReport, folder: Path, *, drafts: DraftQuality | None = None) -> list[Path]:
    """Write ``evaluation.json``, ``evaluation.md``, ``roc-<table>.svg`` and ``<phenotype>-<table>.svg``
    (predicted vs true LVEF and PASP) into ``folder``. Returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def put(name: str, text: str) -> None:
        path = folder / name
        write_atomic(path, text.encode("utf-8"))
        written.append(path)

    data = report.to_dict()
    if drafts is not None:
        data["drafts"] = {
            method: {metric: vars(r) for metric, r in drafts.rates(method).items()} for method in drafts.outcomes
        }
        data["drafts_lvef_mae"] = {m: (sum(e) / len(e) if e else None) for m, e in drafts.lvef_errors.items()}
    put("evaluation.json", json.dumps(data, indent=2, default=str) + "\n")

    lines = ["# Evaluation on held-out patients", "", "```", report.text(), "```", ""]
    rows = report.table()
    lines += ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    if drafts is not None:
        lines += ["", "## Drafts against the studies' own reports", "", "```", *drafts.lines(), "```"]
    for table in report.tables:
        name = f"roc-{table.weights}.svg"
        put(name, roc_grid(table.outcomes, table.aurocs, table.intervals))
        lines += ["", f"![ROC curves, {table.weights} table]({name})"]
        for phenotype, pairs in table.pairs.items():
            if phenotype in ("lvef", "pasp"):
                plot = f"{phenotype}-{table.weights}.svg"
                put(plot, scatter(pairs, phenotype, PHENOTYPES[phenotype].unit or ""))
                lines += ["", f"![{phenotype}, {table.weights} table]({plot})"]
    put("evaluation.md", "\n".join(lines) + "\n")
    return written
