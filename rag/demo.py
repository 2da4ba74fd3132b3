"""``rag demo``: the main job end to end on the embedded default (no server, no GPU, no download).

Steps, each reusing what an earlier run left in the workspace:

1. simulate an echo archive (real DICOM, MP4 and report files with ground truth);
2. ingest it (de-identified) into the case store;
3. train the tiny encoder contrastively (reused when ``checkpoints/last.pt`` exists);
4. embed every clip and report section;
5. build the vector indexes of clips and report sections;
6. learn the section x view weight table and the vote thresholds;
7. add the starter knowledge base;
8. draft the report of a study of a patient the training held out, print it beside the study's own
   report, and write it as Markdown, JSON and HTML;
9. fit the change thresholds on the training patients' follow-up pairs and compare that study with the
   patient's prior one (Markdown and HTML with the frames side by side), when the patient has one.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rag.core.config import RagConfig

if TYPE_CHECKING:
    from rag.store import Store

__all__ = ["DemoOptions", "run_demo"]

STEPS = ("simulate", "ingest", "train", "embed", "index", "view weights", "knowledge base", "draft", "compare")


@dataclass
class DemoOptions:
    """What the demo builds: archive size, training length, which held-out study to draft."""

    patients: int = 48
    seed: int = 0
    epochs: int = 40
    workers: int = 2
    held_out: int = 1
    progress: bool = field(default_factory=lambda: sys.stderr.isatty())


@dataclass
class _Timer:
    echo: Callable[[str], None]
    times: dict[str, float] = field(default_factory=dict)

    def step(self, n: int, name: str, note: str = "") -> _Step:
        self.echo(f"[{n}/{len(STEPS)}] {name}{f' ({note})' if note else ''}")
        return _Step(self, name)


@dataclass
class _Step:
    timer: _Timer
    name: str
    t0: float = field(default_factory=time.perf_counter)

    def __enter__(self) -> _Step:
        return self

    def __exit__(self, *exc: object) -> None:
        seconds = time.perf_counter() - self.t0
        self.timer.times[self.name] = seconds
        if exc[0] is None:
            self.timer.echo(f"      done in {seconds:.1f} s")


def run_demo(cfg: RagConfig, opts: DemoOptions, *, echo: Callable[[str], None] = print) -> Path:
    """Run the main job in ``cfg.home``; returns the folder of the written drafts."""
    from tqdm import tqdm

    from rag.simulate.archive import SimulationOptions, simulate_archive

    home = cfg.home
    home.mkdir(parents=True, exist_ok=True)
    archive = home / "archive"
    checkpoint = home / "checkpoints" / "last.pt"
    timer = _Timer(echo)
    total0 = time.perf_counter()

    done = (archive / "truth" / "studies.csv").is_file()
    with timer.step(1, "simulate archive", "reused" if done else f"{opts.patients} patients"):
        if not done:
            with tqdm(desc="simulate", unit="study", disable=not opts.progress) as bar:
                s = simulate_archive(
                    archive,
                    patients=opts.patients,
                    seed=opts.seed,
                    workers=opts.workers,
                    options=SimulationOptions(height=150, width=200),  # rendered near the stored size: faster
                    progress=bar.update,
                )
            echo(f"      {s.patients} patients, {s.studies} studies, {s.clips} clips, {s.reports} reports")

    with timer.step(2, "ingest"):
        _ingest(cfg, archive, opts, echo)

    done = checkpoint.is_file()
    with timer.step(3, "train encoder", "reused checkpoint" if done else f"{opts.epochs} epochs on CPU"):
        if not done:
            _train(cfg, checkpoint, opts, echo)

    from rag.encoders import load_checkpoint
    from rag.encoders.embed import embed_store, embeddings_dir
    from rag.store import open_store

    store = open_store(cfg.db_url)
    try:
        with timer.step(4, "embed clips and report sections"):
            model, info = load_checkpoint(checkpoint)
            counts = embed_store(store, cfg.media_dir, home / "embeddings", model, info.sha256, progress=opts.progress)
            echo("      " + ", ".join(f"{k}={v}" for k, v in counts.items()))
        folder = embeddings_dir(home / "embeddings", model.spec.name, info.sha256)
        with timer.step(5, "build the case library"):
            _indexes(cfg, store, folder, echo)
        with timer.step(6, "learn view weights and vote thresholds on the training patients"):
            _view_weights(cfg, store, folder, checkpoint, echo)
    finally:
        store.close()

    with timer.step(7, "knowledge base", "starter notes"):
        from rag.kb import add_documents, starter_dir

        result = add_documents([starter_dir()], home / "kb")
        echo(f"      {result.summary()}")

    with timer.step(8, "draft a held-out study"):
        out, study = _draft(cfg, checkpoint, opts, echo)
    with timer.step(9, "compare it with the patient's prior study"):
        _compare(cfg, checkpoint, study, echo)
    total = time.perf_counter() - total0
    echo("")
    echo("steps: " + ", ".join(f"{k} {v:.0f} s" for k, v in timer.times.items()))
    echo(f"total: {total:.0f} s; drafts in {out}")
    return out


def _ingest(cfg: RagConfig, archive: Path, opts: DemoOptions, echo: Callable[[str], None]) -> None:
    from rag.ingest.pipeline import ingest

    cfg.ingest.workers = opts.workers
    report = ingest([archive / "patients"], cfg, progress=opts.progress)
    echo(f"      {report.summary()}")


def _train(cfg: RagConfig, checkpoint: Path, opts: DemoOptions, echo: Callable[[str], None]) -> None:
    from rag.store import open_store
    from rag.train.loop import TrainConfig, train

    store = open_store(cfg.db_url)
    try:
        tc = TrainConfig(
            out=checkpoint.parent,
            epochs=opts.epochs,
            seed=opts.seed,
            progress=opts.progress,
            workers=1,
            cache_dir=cfg.home / "cache",
        )
        train(store, cfg.media_dir, tc, log_line=lambda line: echo(f"      {line}"))
    finally:
        store.close()


def _indexes(cfg: RagConfig, store: Store, folder: Path, echo: Callable[[str], None]) -> None:
    from rag.index.library import LIBRARY_DIR, CaseLibrary

    library = CaseLibrary.build(store, folder, cfg.indexes_dir / LIBRARY_DIR)
    counts = ", ".join(f"{k}={v}" for k, v in library.manifest.counts.items())
    echo(f"      case library ({counts}): one index per report section, catalog, grades in {library.folder}")


def _view_weights(cfg: RagConfig, store: Store, folder: Path, checkpoint: Path, echo: Callable[[str], None]) -> None:
    """Fit the section x view weights and the vote thresholds on the patients the encoder trained on only,
    so that the drafted (held-out) patient is unseen by every fitted part."""
    from rag.draft.drafter import WEIGHTS_FILE
    from rag.encoders.checkpoint import read_checkpoint
    from rag.retrieve import CaseRetriever, ViewWeights, thresholds_path
    from rag.retrieve.calibrate import calibrate

    held_out = (read_checkpoint(checkpoint).get("extra") or {}).get("val_patients") or []
    retriever = CaseRetriever(store, folder, ViewWeights.default())
    done = calibrate(retriever, exclude_patients=held_out)  # neighbours and fits from training patients only
    path = done.fit.weights.save(cfg.home / WEIGHTS_FILE, header=done.fit.lines())
    for line in done.fit.lines()[-2:]:
        echo(f"      {line}")
    n = 0
    if done.thresholds is not None:
        done.thresholds.save(thresholds_path(path))
        n = len(done.thresholds.values)
    echo(f"      weights: {path}; thresholds for {n} findings")


def _draft(cfg: RagConfig, checkpoint: Path, opts: DemoOptions, echo: Callable[[str], None]) -> tuple[Path, int]:
    from rag.draft.drafter import Drafter
    from rag.draft.studies import ground_truth_text, held_out_studies
    from rag.render import render_markdown, write_report

    drafter = Drafter(cfg, checkpoint=checkpoint)
    studies = held_out_studies(checkpoint, drafter.store)
    if not studies:
        raise RuntimeError("the checkpoint records no held-out patient; retrain with a held-out split")
    # patients with an earlier study first, so that the comparison step has a prior to compare with
    catalog = drafter.retriever.catalog
    every = held_out_studies(checkpoint, drafter.store, latest_only=False)
    patient_of = {s: catalog.study(s).patient_id for s in every}
    counts = Counter(patient_of.values())
    followed = {p for p, n in counts.items() if n > 1}
    studies.sort(key=lambda s: (patient_of[s] not in followed, s))
    study = studies[(opts.held_out - 1) % len(studies)]
    t0 = time.perf_counter()
    report = drafter.draft(study)
    echo(f"      study {study} drafted in {1000 * (time.perf_counter() - t0):.0f} ms (first draft loads the indexes)")
    truth = ground_truth_text(drafter.store, study)
    out = cfg.home / "drafts"
    for suffix in ("md", "json", "html"):
        path = write_report(
            report, out / f"study-{study}.{suffix}", media_dir=cfg.media_dir, store=drafter.store, ground_truth=truth
        )
        echo(f"      wrote {path}")
    echo("")
    echo(render_markdown(report, ground_truth=truth))
    return out, study


def _compare(cfg: RagConfig, checkpoint: Path, study: int, echo: Callable[[str], None]) -> None:
    """Fit the change thresholds without the held-out patients, then compare ``study`` with its prior."""
    from rag.compare.comparer import CHANGE_FILE, Comparer
    from rag.compare.fit import fit_change_model, patient_pairs
    from rag.compare.prior import comparison_text
    from rag.draft.studies import ground_truth_text, held_out_studies
    from rag.render.comparison import comparison_markdown, write_comparison

    comparer = Comparer(config=cfg, checkpoint=checkpoint)
    retriever = comparer.drafter.retriever
    catalog = retriever.catalog
    held = {
        catalog.study(s).patient_id for s in held_out_studies(checkpoint, comparer.drafter.store, latest_only=False)
    }
    studies = [int(s) for s in catalog.study_ids if int(s) in retriever.studies]
    pairs = patient_pairs(catalog, studies, {catalog.study(s).patient_id for s in studies} - held)
    model = fit_change_model(comparer, pairs)
    model.save(cfg.home / CHANGE_FILE)
    echo(f"      change thresholds: {model.fitted_on}; {model.pair_k} change pairs per section")
    result = comparer.compare(study)
    reference = comparison_text(ground_truth_text(comparer.drafter.store, study))
    for suffix in ("md", "html"):
        path = write_comparison(
            result, cfg.home / "drafts" / f"comparison-{study}.{suffix}", media_dir=cfg.media_dir, reference=reference
        )
        echo(f"      wrote {path}")
    echo("")
    echo(comparison_markdown(result, reference=reference))
