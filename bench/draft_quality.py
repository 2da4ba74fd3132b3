"""How well drafts agree with the studies' own reports, on the patients the encoder's training held out.

For each held-out study the draft is compared with the study's stored report, section by section:
for every finding of the phenotype table (MR, AS, effusion, LV dilation, ...) the grade a text states
(0 none/normal, 1 mild, 2 moderate, 3 severe) is read with the same rules from the draft and from
the report; a finding agrees when both state the same grade (present/absent agreement: both 0 or
both > 0). LVEF: absolute error of the drafted (voted) value against the report's.

Side by side in one run:

- ``top-1 copy`` (EchoPrime's choice): each section's best neighbour text;
- ``vote-agreeing``: the best-ranked neighbour text whose grades agree with the neighbour vote;
- ``prior``: every finding graded as the training studies' most frequent grade (what a draft that
  ignores the images would score);
- with ``--llm N``: the ``openai`` generator through a vLLM server started here, on N studies.

Usage::

    python bench/draft_quality.py --workspace workspace [--llm 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter
from pathlib import Path


def _grades(text: str, section: str) -> dict[str, int]:
    from rag.vocab.findings import PHENOTYPES
    from rag.vocab.grades import statement_grade

    out = {}
    for p in PHENOTYPES.values():
        if p.kind == "finding" and p.section == section and p.rule is not None:
            out[p.name] = statement_grade(text, p.rule)
    return out


def _truth(drafter: object, study: int) -> tuple[dict[str, dict[str, int]], float | None]:
    from sqlalchemy import select

    from rag.draft.drafter import Drafter
    from rag.store import Report, ReportSection

    assert isinstance(drafter, Drafter)
    with drafter.store.session() as s:
        rows = s.execute(
            select(ReportSection.name, ReportSection.text)
            .join(Report, ReportSection.report_id == Report.id)
            .where(Report.study_id == study)
        ).all()
    by_section = {str(n): _grades(str(t), str(n)) for n, t in rows}
    lvef = drafter.retriever.catalog.measurements.get(study, {}).get("lvef")
    return by_section, lvef


def _score(report: object, truth: dict[str, dict[str, int]], counts: dict[str, list[int]]) -> None:
    from rag.generate.report import Report
    from rag.vocab.findings import PHENOTYPES

    assert isinstance(report, Report)
    for p in PHENOTYPES.values():
        if p.kind != "finding" or p.rule is None:
            continue
        want = truth.get(p.section, {}).get(p.name, 0)
        section = report.section(p.section)
        got = _grades(section.text, p.section).get(p.name, 0) if section is not None else 0
        counts["grade"].append(int(got == want))
        counts["presence"].append(int((got > 0) == (want > 0)))
        if want > 0:
            counts["abnormal_found"].append(int(got > 0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=Path("workspace"))
    parser.add_argument("--llm", type=int, default=0, help="also draft N studies through vLLM")
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: <workspace>/checkpoints/last.pt")
    args = parser.parse_args()

    from rag.core.config import load_config
    from rag.draft import Drafter, ExtractiveGenerator
    from rag.draft.studies import held_out_studies
    from rag.vocab.findings import PHENOTYPES

    cfg = load_config(home=args.workspace)
    drafter = Drafter(cfg, kb=None, checkpoint=args.checkpoint)
    held = set(held_out_studies(drafter.checkpoint, drafter.store, latest_only=False))
    studies = sorted(s for s in held if s in drafter.retriever.studies)
    training = [int(s) for s in drafter.retriever.studies.study_ids if int(s) not in held]
    if not studies:
        print("the checkpoint records no held-out study in this store")
        return 1
    # prior: the most frequent grade of each finding among the training studies' reports
    prior: dict[str, int] = {}
    train_truth = [_truth(drafter, s)[0] for s in training]
    for p in PHENOTYPES.values():
        if p.kind == "finding":
            seen = Counter(t.get(p.section, {}).get(p.name, 0) for t in train_truth)
            prior[p.name] = seen.most_common(1)[0][0] if seen else 0
    methods = {"top-1 copy": ExtractiveGenerator(agree_with_votes=False), "vote-agreeing": ExtractiveGenerator()}
    results: dict[str, dict[str, list[int]]] = {m: {"grade": [], "presence": [], "abnormal_found": []} for m in methods}
    results["prior"] = {"grade": [], "presence": [], "abnormal_found": []}
    lvef_err: list[float] = []
    for study in studies:
        truth, lvef = _truth(drafter, study)
        context = drafter.context(study)
        for name, gen in methods.items():
            _score(gen.generate(context), truth, results[name])
        for p in PHENOTYPES.values():
            if p.kind == "finding":
                want = truth.get(p.section, {}).get(p.name, 0)
                results["prior"]["grade"].append(int(prior[p.name] == want))
                results["prior"]["presence"].append(int((prior[p.name] > 0) == (want > 0)))
                if want > 0:
                    results["prior"]["abnormal_found"].append(int(prior[p.name] > 0))
        voted = context.predictions.predictions["lvef"].value
        if lvef is not None and voted is not None:
            lvef_err.append(abs(voted - lvef))
    train_lvef = [v["lvef"] for s, v in drafter.retriever.catalog.measurements.items() if s in training and "lvef" in v]
    mean_lvef = statistics.fmean(train_lvef) if train_lvef else float("nan")
    prior_err = [
        abs(mean_lvef - drafter.retriever.catalog.measurements[s]["lvef"])
        for s in studies
        if "lvef" in drafter.retriever.catalog.measurements.get(s, {})
    ]
    print(f"{len(studies)} held-out studies, {len(training)} training studies, {len(PHENOTYPES)} phenotypes")
    print(f"{'method':15s} {'grade agree':>12s} {'present/absent':>15s} {'abnormal found':>15s}")
    for name, r in results.items():
        print(
            f"{name:15s} {statistics.fmean(r['grade']):12.3f} {statistics.fmean(r['presence']):15.3f} "
            f"{statistics.fmean(r['abnormal_found']) if r['abnormal_found'] else float('nan'):15.3f}"
        )
    print(
        f"LVEF MAE: neighbour vote {statistics.fmean(lvef_err):.2f} points, "
        f"training mean {statistics.fmean(prior_err):.2f}"
    )
    if args.llm:
        _llm(cfg, drafter, studies[: args.llm])
    return 0


def _llm(cfg: object, drafter: object, studies: list[int]) -> None:
    from rag.core.config import RagConfig
    from rag.draft import Drafter
    from rag.llm.prepare import prepare_model
    from rag.llm.server import VLLMServer

    assert isinstance(cfg, RagConfig) and isinstance(drafter, Drafter)
    model_dir = prepare_model(cfg.home / cfg.llm.model_dir)
    counts: dict[str, list[int]] = {"grade": [], "presence": [], "abnormal_found": []}
    with VLLMServer.from_config(cfg, model_dir=model_dir) as server:
        gen = drafter.generator("openai", base_url=server.base_url)
        for study in studies:
            truth, _ = _truth(drafter, study)
            report = gen.generate(drafter.context(study))  # raises unless the answer fits the schema
            _score(report, truth, counts)
            print(f"study {study}: {len(report.sections)} sections; {report.text[:200]!r}")
    print(
        f"llm ({len(studies)}/{len(studies)} answers valid against the schema): grade agree "
        f"{statistics.fmean(counts['grade']):.3f}, present/absent {statistics.fmean(counts['presence']):.3f}"
    )


if __name__ == "__main__":
    sys.exit(main())
