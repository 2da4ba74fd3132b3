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
    python bench/draft.py --scale 1230000 [--scale-dir /tmp/rag-scale] [--studies 50]

Target: extractive p50 < 50 ms per study with cached embeddings. The last line is machine-readable.

``--scale N`` builds (once, into ``--scale-dir``) a synthetic workspace of N report sections of 512-d
vectors and its case library (``bench/_scale.py``), then measures in fresh processes, side by side:

- ``case library``: ``Drafter(...).draft(study)`` opening the saved library (per-section FAISS indexes
  and catalog, memory-mapped; no torch import): time from process start to the first draft, then
  p50/p99 of the following drafts (retrieval of 15 sections, k=50 votes of every phenotype,
  extractive text, provenance);
- ``echoprime-style``: EchoPrime's way: read every candidate vector and the section table into memory
  at start, then per section a brute-force matmul over that section's candidates and the top text.

Targets: first draft < 1 s after the process starts, p50 < 50 ms.
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
    parser.add_argument("--scale", type=int, default=0, help="report sections of a synthetic case library")
    parser.add_argument("--scale-dir", type=Path, default=Path("/tmp/rag-scale"))
    parser.add_argument("--child", choices=("library", "echoprime"), help=argparse.SUPPRESS)
    parser.add_argument("--started", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args.child, args.workspace, args.studies, args.started)
    if args.scale:
        return _scale(args.scale, args.scale_dir, args.studies)

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


def _scale(n_sections: int, root: Path, n_studies: int) -> int:
    import json
    import os
    import subprocess

    sys.path.insert(0, str(Path(__file__).parent))
    from _scale import build_workspace

    home = build_workspace(root, n_sections)
    results = {}
    for child in ("library", "echoprime"):
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
        started = time.time()
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                child,
                "--workspace",
                str(home),
                "--studies",
                str(n_studies),
                "--started",
                repr(started),
            ],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        results[child] = json.loads(out.strip().splitlines()[-1])
    lib, base = results["library"], results["echoprime"]
    print(f"{n_sections} report sections of {lib['dim']}-d, {lib['drafts']} drafts per method, fresh processes")
    print(f"{'method':18s} {'first draft s':>14s} {'p50 ms':>8s} {'p99 ms':>8s}")
    for name, r in (("case library", lib), ("echoprime-style", base)):
        print(f"{name:18s} {r['first_s']:14.2f} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f}")
    print(
        f"ratios (echoprime-style / case library): first draft {base['first_s'] / lib['first_s']:.1f}x, "
        f"p50 {base['p50_ms'] / lib['p50_ms']:.1f}x"
    )
    print(
        f"library_first_draft_s={lib['first_s']:.2f} target_s=1 library_p50_ms={lib['p50_ms']:.1f} "
        f"library_p99_ms={lib['p99_ms']:.1f} target_p50_ms=50"
    )
    return 0


def _child(kind: str, home: Path, n_studies: int, started: float) -> int:
    """One fresh process: the time from its start to its first draft, then per-draft times."""
    import json

    from rag.core.config import load_config

    cfg = load_config(home=home, pseudonym_key="bench-scale")
    if kind == "library":
        from rag.draft import Drafter

        drafter = Drafter(cfg, kb=None)
        draft = drafter.draft
        ids = np.asarray(drafter.retriever.studies.study_ids)
    else:
        draft, ids = _echoprime_loaded(cfg.home, cfg.db_url)
    rng = np.random.default_rng(1)
    studies = [int(s) for s in rng.choice(ids, size=n_studies + 1, replace=False)]
    draft(studies[0])
    first = time.time() - started
    ms = []
    for study in studies[1:]:
        t0 = time.perf_counter()
        draft(study)
        ms.append(1000 * (time.perf_counter() - t0))
    p50, p99 = _percentiles(ms)
    dim = 512
    print(json.dumps({"first_s": first, "p50_ms": p50, "p99_ms": p99, "drafts": len(ms), "dim": dim}))
    return 0


def _echoprime_loaded(home: Path, db_url: str) -> tuple[object, np.ndarray]:
    """EchoPrime's drafting state: every candidate vector and its section and study read into memory."""
    from rag.index.catalog import Catalog
    from rag.store import open_store
    from rag.vocab.sections import ECHO_SECTIONS

    store = open_store(db_url)
    catalog = Catalog.load(store)
    folder = next((home / "embeddings").iterdir())
    section_ids = np.load(folder / "sections.ids.npy")
    section_vectors = np.load(folder / "sections.vectors.npy")
    clip_ids = np.load(folder / "clips.ids.npy")
    clip_vectors = np.load(folder / "clips.vectors.npy")
    rows = np.searchsorted(catalog.section_ids, section_ids)
    codes = catalog.section_codes[rows]
    patients = catalog.patients_of(catalog.section_study[rows])
    clip_study = catalog.clip_study[np.searchsorted(catalog.clip_ids, clip_ids)]
    by_section = [np.flatnonzero(codes == k) for k in range(len(ECHO_SECTIONS))]

    def draft(study: int) -> None:
        own = clip_vectors[clip_study == study].mean(axis=0)
        own /= np.linalg.norm(own)
        patient = int(catalog.study(study).patient_id)
        picked = []
        for cand in by_section:
            sims = section_vectors[cand] @ own
            sims[patients[cand] == patient] = -np.inf
            picked.append(int(section_ids[cand[int(np.argmax(sims))]]))
        Catalog.texts(store, picked)

    return draft, catalog.study_ids


if __name__ == "__main__":
    sys.exit(main())
