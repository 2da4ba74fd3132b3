"""Report drafting speed: milliseconds per study for the extractive draft, tokens/second through vLLM.

Needs a workspace where the main job ran (``make demo``: store, checkpoint, embeddings, KB). Side by
side in one run:

- ``echoprime-style``: EchoPrime's drafting step — per section, a brute-force similarity against
  every stored report-section vector, the top text copied (numpy matmul, no index, no votes, no KB);
- ``extractive``: this project's draft — FAISS-indexed per-section retrieval with filters, the
  neighbour vote of every measurement and finding, KB passages, vote-consistent text choice, number
  filling and the full provenance record;
- ``extractive, no KB``: the same without the knowledge-base lookups;
- with ``--llm``: the ``openai`` generator through a vLLM server started on this machine (CPU), with
  prompt/completion tokens and tokens/second.

Usage::

    python bench/draft.py --workspace workspace [--studies 20] [--llm]

Target: extractive p50 < 50 ms per study with cached embeddings. The last line is machine-readable.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def _percentiles(ms: list[float]) -> tuple[float, float]:
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def _echoprime_style(drafter: object, studies: list[int]) -> list[float]:
    """Per section: brute-force cosine over every stored section vector of that section, copy the top text."""
    from rag.draft.drafter import Drafter
    from rag.index.catalog import Catalog
    from rag.vocab.sections import ECHO_SECTIONS

    assert isinstance(drafter, Drafter)
    retriever = drafter.retriever
    index = retriever.report_sections
    vectors = index.vectors
    by_section = {s: np.flatnonzero(index.section_codes == k) for k, s in enumerate(ECHO_SECTIONS)}
    times = []
    for study in studies:
        t0 = time.perf_counter()
        emb = retriever.section_embeddings(study)
        picked = []
        for k, section in enumerate(ECHO_SECTIONS):
            cand = by_section[section]
            if not emb.has_evidence[k] or not len(cand):
                continue
            sims = vectors[cand] @ emb.vectors[k]
            picked.append(int(index.ids[cand[int(np.argmax(sims))]]))
        Catalog.texts(drafter.store, picked)
        times.append(1000 * (time.perf_counter() - t0))
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=Path("workspace"))
    parser.add_argument("--studies", type=int, default=20, help="studies to draft (timed after one warm-up)")
    parser.add_argument("--llm", action="store_true", help="also draft through a vLLM server started here")
    parser.add_argument("--llm-studies", type=int, default=3)
    args = parser.parse_args()

    from rag.core.config import load_config
    from rag.draft import Drafter, ExtractiveGenerator

    cfg = load_config(home=args.workspace)
    drafter = Drafter(cfg)
    no_kb = Drafter(cfg, kb=None)
    studies = sorted(int(s) for s in drafter.retriever.studies.study_ids)[: args.studies + 1]
    warm, timed = studies[0], studies[1:]
    drafter.draft(warm)
    no_kb.draft(warm)
    _echoprime_style(drafter, [warm])
    rows: list[tuple[str, list[float]]] = [("echoprime-style", _echoprime_style(drafter, timed))]
    for name, d in (("extractive", drafter), ("extractive, no KB", no_kb)):
        gen = ExtractiveGenerator()
        ms = []
        for study in timed:
            t0 = time.perf_counter()
            gen.generate(d.context(study))
            ms.append(1000 * (time.perf_counter() - t0))
        rows.append((name, ms))
    base = statistics.median(rows[0][1])
    print(f"{len(timed)} studies, {len(drafter.retriever.report_sections)} stored report sections")
    print(f"{'method':22s} {'p50 ms':>8s} {'p99 ms':>8s} {'vs echoprime-style':>20s}")
    for name, ms in rows:
        p50, p99 = _percentiles(ms)
        print(f"{name:22s} {p50:8.1f} {p99:8.1f} {p50 / base:19.2f}x")
    p50 = _percentiles(rows[1][1])[0]
    tps = float("nan")
    if args.llm:
        tps = _llm(cfg, drafter, timed[: args.llm_studies])
    print(f"extractive_p50_ms={p50:.1f} target_ms=50 llm_tokens_per_s={tps:.1f}")
    return 0


def _llm(cfg: object, drafter: object, studies: list[int]) -> float:
    from rag.core.config import RagConfig
    from rag.draft import Drafter, OpenAIGenerator
    from rag.llm.prepare import prepare_model
    from rag.llm.server import VLLMServer

    assert isinstance(cfg, RagConfig) and isinstance(drafter, Drafter)
    model_dir = prepare_model(cfg.home / cfg.llm.model_dir)
    t0 = time.perf_counter()
    with VLLMServer.from_config(cfg, model_dir=model_dir) as server:
        print(f"vLLM ready in {time.perf_counter() - t0:.1f} s at {server.base_url}")
        gen = drafter.generator("openai", base_url=server.base_url)
        assert isinstance(gen, OpenAIGenerator)
        tokens, seconds = 0, 0.0
        for study in studies:
            t = time.perf_counter()
            report = gen.generate(drafter.context(study))
            usage = gen.last_completion.usage
            tokens += usage.completion_tokens
            seconds += usage.seconds
            print(
                f"study {study}: {1000 * (time.perf_counter() - t):.0f} ms, prompt {usage.prompt_tokens} tokens, "
                f"completion {usage.completion_tokens} tokens, {len(report.sections)} sections, "
                f"{len(report.dropped_context)} dropped"
            )
    return tokens / seconds if seconds else float("nan")


if __name__ == "__main__":
    sys.exit(main())
