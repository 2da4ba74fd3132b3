"""How well drafts agree with the studies' own reports, on the patients the encoder's training held out.

For each held-out study the draft is compared with the study's stored report, section by section:
for every finding of the phenotype table (MR, AS, effusion, LV dilation, ...) the grade a text states
(0 none/normal, 1 mild, 2 moderate, 3 severe) is read with the same rules from the draft and from
the report; a finding agrees when both state the same grade (present/absent agreement: both 0 or
both > 0). LVEF: absolute error of the drafted (voted) value against the report's. The scoring is
:mod:`rag.eval.drafts`; each rate is printed with its 95 % bootstrap interval over studies.

Side by side in one run:

- ``top-1 copy`` (EchoPrime's choice): each section's best neighbour text;
- ``vote-agreeing``: the best-ranked neighbour text whose grades agree with the neighbour vote;
- ``all normal``: every finding graded 0 (the report a reader writes without looking);
- ``prior``: every finding graded as the training studies' most frequent grade (what a draft that
  ignores the images would score);
- with ``--llm N``: the ``openai`` generator through a vLLM server started here, on N studies.

Usage::

    python bench/draft_quality.py --workspace workspace [--llm 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=Path("workspace"))
    parser.add_argument("--llm", type=int, default=0, help="also draft N studies through vLLM")
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: <workspace>/checkpoints/last.pt")
    args = parser.parse_args()

    from rag.core.config import load_config
    from rag.draft import Drafter
    from rag.draft.studies import held_out_studies
    from rag.eval.drafts import draft_quality

    cfg = load_config(home=args.workspace)
    drafter = Drafter(cfg, kb=None, checkpoint=args.checkpoint)
    held = set(held_out_studies(drafter.checkpoint, drafter.store, latest_only=False))
    studies = sorted(s for s in held if s in drafter.retriever.studies)
    training = [int(s) for s in drafter.retriever.studies.study_ids if int(s) not in held]
    if not studies:
        print("the checkpoint records no held-out study in this store")
        return 1
    # neighbours come from the training patients only, as for the fitted parts
    quality = draft_quality(drafter.retriever.restricted(training), studies, training)
    print(f"{len(training)} training studies")
    print("\n".join(quality.lines()))
    if args.llm:
        _llm(cfg, drafter, studies[: args.llm])
    return 0


def _llm(cfg: object, drafter: object, studies: list[int]) -> None:
    from rag.core.config import RagConfig
    from rag.draft import Drafter
    from rag.eval.drafts import DraftQuality, score_report, stored_grades
    from rag.llm.prepare import prepare_model
    from rag.llm.server import VLLMServer

    assert isinstance(cfg, RagConfig) and isinstance(drafter, Drafter)
    model_dir = prepare_model(cfg.home / cfg.llm.model_dir)
    quality = DraftQuality(studies)
    with VLLMServer.from_config(cfg, model_dir=model_dir) as server:
        gen = drafter.generator("openai", base_url=server.base_url)
        for study in studies:
            report = gen.generate(drafter.context(study))  # raises unless the answer fits the schema
            quality.add("llm", score_report(report, stored_grades(drafter.store, study)))
            print(f"study {study}: {len(report.sections)} sections; {report.text[:200]!r}")
    print(f"llm: {len(studies)}/{len(studies)} answers valid against the schema")
    print("\n".join(quality.lines()))


if __name__ == "__main__":
    sys.exit(main())
