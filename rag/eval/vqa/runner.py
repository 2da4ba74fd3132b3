"""Run an answerer over a suite's test items: cached responses, resume, scores with intervals.

Every answer is appended to ``<out>/responses.jsonl`` as it arrives, keyed by a hash of the
answerer's fingerprint (model, settings, retrieval corpus version), the suite, the item and its
question, so a run that stops resumes where it stopped and re-scoring (``--scoring``) needs no new
answer. Scores are recomputed from the cache every time.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag.eval.drafts import Rate, rate
from rag.eval.vqa.answerers import Answer, Answerer
from rag.eval.vqa.corpus import Leakage
from rag.eval.vqa.items import LoadReport, VQAItem
from rag.eval.vqa.scoring import score_item

__all__ = ["ItemResult", "RunResult", "macro_scores", "run_suite"]


@dataclass(frozen=True)
class ItemResult:
    """One scored answer."""

    id: str
    question: str
    reference: str
    answer: str
    part: str
    correct: bool
    precision: float
    recall: float
    f1: float
    categories: dict[str, str]
    retrieved: list[tuple[str, float]]
    image: str
    leaked: bool
    prompt: str | None = None
    raw: str | None = None
    text: dict[str, float] = field(default_factory=dict)
    judged: bool | None = None  # the judge model's verdict on an open answer (None: not judged)


@dataclass
class RunResult:
    """The scored items of one run, how they were scored, and what was left out."""

    suite: str
    answerer: str
    scoring: str
    items: list[ItemResult]
    skipped_rows: int
    leakage: str
    notes: list[str] = field(default_factory=list)
    judge: str | None = None  # the judge model, when open answers were judged

    def accuracy(self, part: str | None = None, category: tuple[str, str] | None = None) -> Rate:
        """Accuracy with a 95 % interval resampling images (questions on one image are not independent)."""
        groups: dict[str, list[int]] = {}
        for it in self.items:
            if part is not None and it.part != part:
                continue
            if category is not None and it.categories.get(category[0]) != category[1]:
                continue
            groups.setdefault(it.image, []).append(int(it.correct))
        return rate(list(groups.values()))

    def judged_accuracy(self) -> Rate:
        """Open answers the judge called equivalent to the reference, 95 % interval over images."""
        groups: dict[str, list[int]] = {}
        for it in self.items:
            if it.part == "open" and it.judged is not None:
                groups.setdefault(it.image, []).append(int(it.judged))
        return rate(list(groups.values()))

    def apply_judge(self, judge: Any) -> None:
        """Ask ``judge`` (:class:`rag.eval.vqa.judge.Judge`) about every open answer."""
        from dataclasses import replace

        self.items = [
            replace(it, judged=judge.verdict(it.question, it.reference, it.answer)) if it.part == "open" else it
            for it in self.items
        ]
        self.judge = judge.model

    def apply_text_metric(self, name: str, score: Any) -> None:
        """Add ``name`` = ``score(reference, answer)`` to every report item's text metrics."""
        from dataclasses import replace

        self.items = [
            replace(it, text={**it.text, name: float(score(it.reference, it.answer))}) if it.part == "report" else it
            for it in self.items
        ]

    def text_metric(self, metric: str) -> Rate:
        """A report metric's mean (x100, as TemMed-Bench reports it) with its 95 % interval over images."""
        groups: dict[str, list[float]] = {}
        for it in self.items:
            if metric in it.text:
                groups.setdefault(it.image, []).append(100.0 * it.text[metric])
        return rate(list(groups.values()))

    def summary(self) -> dict[str, Any]:
        """Accuracies per part (and, as the official script reports them, its own aggregates)."""
        open_items = [it for it in self.items if it.part == "open"]
        out: dict[str, Any] = {
            "suite": self.suite,
            "answerer": self.answerer,
            "scoring": self.scoring,
            "n": len(self.items),
            "skipped_rows": self.skipped_rows,
            "leakage": self.leakage,
        }
        for name, part in (("all", None), ("closed", "closed"), ("open", "open")):
            r = self.accuracy(part)
            out[f"{name}_accuracy"] = {"mean": r.mean, "low": r.low, "high": r.high, "n": r.n}
        for metric in ("precision", "recall", "f1"):
            values = [getattr(it, metric) for it in open_items]
            out[f"open_{metric}"] = sum(values) / len(values) if values else float("nan")
        if self.suite == "temmed":
            from rag.eval.vqa.scoring import temmed_reading

            pairs = [(it.reference, temmed_reading(it.answer, self.scoring)) for it in self.items]
            out["macro_f1"], out["macro_precision"], out["macro_recall"] = macro_scores(pairs)
            out["unreadable_answers"] = sum(1 for _, said in pairs if said is None)
        if self.suite == "temmed-pairs":
            from rag.eval.vqa.scoring import temmed_pair_reading

            picks = [(it.reference, temmed_pair_reading(it.answer, self.scoring)) for it in self.items]
            out["weighted_f1"], out["weighted_precision"], out["weighted_recall"] = _weighted(picks)
            out["unreadable_answers"] = sum(1 for _, said in picks if said is None)
        if any(it.part == "report" for it in self.items):
            from rag.eval.textmetrics import REPORT_METRICS, tokenizer_name

            for metric in sorted(set(REPORT_METRICS) | {k for it in self.items for k in it.text}):
                r = self.text_metric(metric)
                out[f"report_{metric}"] = {"mean": r.mean, "low": r.low, "high": r.high, "n": r.n}
            out["report_tokenizer"] = tokenizer_name()
        if self.judge is not None:
            r = self.judged_accuracy()
            out["open_judged_accuracy"] = {"mean": r.mean, "low": r.low, "high": r.high, "n": r.n, "judge": self.judge}
        if self.scoring == "official" and open_items:
            # MedEvalKit divides open accuracy by the open count a second time
            out["official_open_acc"] = out["open_accuracy"]["mean"] / len(open_items)
        return out

    def breakdown(self, key: str) -> dict[str, Rate]:
        values = sorted({it.categories.get(key, "") for it in self.items})
        return {v: self.accuracy(category=(key, v)) for v in values}

    def markdown(self) -> str:
        s = self.summary()
        lines = [
            f"# {self.suite}: {self.answerer} ({self.scoring} scoring)",
            "",
            f"{s['n']} items scored; {self.skipped_rows} rows left out by the loader; leakage: {self.leakage}",
            "",
        ]
        if any(it.part != "report" for it in self.items):
            lines += ["| part | accuracy [95 % CI] | n |", "|---|---:|---:|"]
            for name in ("closed", "open", "all"):
                r = self.accuracy(None if name == "all" else name)
                if r.n:
                    lines.append(f"| {name} | {r} | {r.n} |")
        if "report_bleu1" in s:
            lines += ["", f"Report text, x100, mean [95 % CI] ({s['report_tokenizer']}):", ""]
            lines += ["| metric | mean [95 % CI] | n |", "|---|---:|---:|"]
            names = {"bleu1": "BLEU-1", "rouge_l": "ROUGE-L", "meteor": "METEOR"}
            names.update({k: k for it in self.items for k in it.text if k not in names})
            for metric, label in names.items():
                r = self.text_metric(metric)
                lines.append(f"| {label} | {r.mean:.2f} [{r.low:.2f}, {r.high:.2f}] | {r.n} |")
        for key, label in (("macro", "macro (yes/no)"), ("weighted", "weighted (A/B/C)")):
            if f"{key}_f1" in s:
                lines.append(
                    f"\n{label}: F1 {s[key + '_f1']:.4f}, precision {s[key + '_precision']:.4f}, "
                    f"recall {s[key + '_recall']:.4f}; unreadable answers {s['unreadable_answers']}"
                )
        if self.scoring == "official" and "official_open_acc" in s:
            lines.append(
                f"| open, as the official script reports it (divided twice) | {s['official_open_acc']:.4f} | |"
            )
        if self.judge is not None:
            r = self.judged_accuracy()
            lines += ["", f"open answers judged equivalent by {self.judge}: {r} ({r.n} judged; exact match above)"]
        if any(it.part == "open" for it in self.items):
            lines += [
                "",
                f"open token overlap: precision {s['open_precision']:.3f}, recall {s['open_recall']:.3f}, "
                f"F1 {s['open_f1']:.3f}",
            ]
        for key in sorted({k for it in self.items for k in it.categories}):
            lines += ["", f"| {key} | accuracy [95 % CI] | n |", "|---|---:|---:|"]
            lines += [f"| {v} | {r} | {r.n} |" for v, r in self.breakdown(key).items()]
        lines += ["", *self.notes]
        return "\n".join(lines) + "\n"

    def write(self, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / "results.json", folder / "results.csv", folder / "results.md"]
        data = {"summary": self.summary(), "items": [asdict(it) for it in self.items]}
        paths[0].write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
        with paths[1].open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["id", "part", "correct", "reference", "answer", "question", "retrieved"])
            for it in self.items:
                w.writerow(
                    [
                        it.id,
                        it.part,
                        int(it.correct),
                        it.reference,
                        it.answer,
                        it.question,
                        " ".join(f"{i}:{s:.3f}" for i, s in it.retrieved),
                    ]
                )
        paths[2].write_text(self.markdown(), encoding="utf-8")
        return paths


def macro_scores(pairs: Sequence[tuple[str, str | None]]) -> tuple[float, float, float]:
    """Macro F1, precision and recall over the classes yes and no (as scikit-learn's ``average="macro"``
    with ``zero_division=0``); an unreadable answer is in neither predicted class."""
    f1s, ps, rs = [], [], []
    for cls in ("no", "yes"):
        tp = sum(1 for ref, said in pairs if ref == cls and said == cls)
        fp = sum(1 for ref, said in pairs if ref != cls and said == cls)
        fn = sum(1 for ref, said in pairs if ref == cls and said != cls)
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        ps.append(p)
        rs.append(r)
        f1s.append(2 * p * r / (p + r) if p + r else 0.0)
    return sum(f1s) / 2, sum(ps) / 2, sum(rs) / 2


def _image_key(item: VQAItem) -> str:
    """What a bootstrap resamples: the item's images, named by their last three path parts (suites that
    name files alike in many folders, as CheXpert does, stay apart)."""
    if not item.images:
        return item.id
    return "+".join("/".join(p.parts[-3:]) for p in item.images)


def _weighted(pairs: Sequence[tuple[str, str | None]]) -> tuple[float, float, float]:
    """F1, precision and recall averaged over classes weighted by their true count (scikit-learn's
    ``average="weighted"``, ``zero_division=0``, as TemMed-Bench's pair-selection notebook reports them);
    an unreadable answer is a class of its own that no item truly has."""
    total = len(pairs)
    if not total:
        return float("nan"), float("nan"), float("nan")
    f1 = p_sum = r_sum = 0.0
    for cls in sorted({ref for ref, _ in pairs}):
        tp = sum(1 for ref, said in pairs if ref == cls and said == cls)
        predicted = sum(1 for _, said in pairs if said == cls)
        support = sum(1 for ref, _ in pairs if ref == cls)
        p = tp / predicted if predicted else 0.0
        r = tp / support
        weight = support / total
        p_sum += weight * p
        r_sum += weight * r
        f1 += weight * (2 * p * r / (p + r) if p + r else 0.0)
    return f1, p_sum, r_sum


def cache_key(answerer: Answerer, suite: str, item: VQAItem) -> str:
    payload = [answerer.fingerprint, suite, item.id, item.question, sorted(item.options.items())]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()


def _read_cache(path: Path) -> dict[str, Answer]:
    out: dict[str, Answer] = {}
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
            a = row["answer"]
            out[row["key"]] = Answer(
                text=a["text"],
                retrieved=[(str(i), float(s)) for i, s in a.get("retrieved", [])],
                prompt=a.get("prompt"),
                raw=a.get("raw"),
                tokens=(int(a["tokens"][0]), int(a["tokens"][1])) if a.get("tokens") else None,
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue  # a line cut short by a crash: that item is answered again
    return out


def run_suite(
    test: LoadReport,
    answerer: Answerer,
    *,
    scoring: str = "corrected",
    cache: Path | None = None,
    leakage: Leakage | None = None,
    exclude_leaked: bool = False,
    progress: Callable[[int], None] | None = None,
    limit: int | None = None,
    workers: int = 1,
) -> RunResult:
    """Answer (or read from the cache) and score every test item.

    Args:
        exclude_leaked: hide from the answerer the corpus rows that share the item's image or patient.
        limit: answer at most this many new items (the rest stay unanswered; a later run resumes).
        workers: answers asked at once (threads; a served model batches them); each is cached as it arrives.
    """
    done = _read_cache(cache) if cache is not None else {}
    leak = leakage or Leakage()
    keys = {item.id: cache_key(answerer, test.suite, item) for item in test.items}
    todo = [item for item in test.items if keys[item.id] not in done][:limit]
    prepare = getattr(answerer, "prepare", None)
    if prepare is not None and todo:
        prepare(todo)

    def ask(item: VQAItem) -> Answer:
        excluded = set(leak.by_image.get(item.id, [])) | set(leak.by_patient.get(item.id, []))
        return answerer.answer(item, excluded if exclude_leaked else ())

    handle = cache.open("a", encoding="utf-8") if cache is not None else None
    if handle is not None and cache is not None and cache.stat().st_size:
        with cache.open("rb") as f:
            f.seek(-1, 2)
            if f.read(1) != b"\n":
                handle.write("\n")  # a line a crash left unfinished stays apart from the next answer

    def keep(item: VQAItem, answer: Answer) -> None:
        done[keys[item.id]] = answer
        if handle is not None:
            handle.write(json.dumps({"key": keys[item.id], "id": item.id, "answer": asdict(answer)}) + "\n")
            handle.flush()
        if progress is not None:
            progress(1)

    try:
        if workers <= 1:
            for item in todo:
                keep(item, ask(item))
        else:
            from concurrent.futures import ThreadPoolExecutor, as_completed

            with ThreadPoolExecutor(max_workers=workers) as pool:
                futures = {pool.submit(ask, item): item for item in todo}
                try:
                    for future in as_completed(futures):
                        keep(futures[future], future.result())
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
    finally:
        if handle is not None:
            handle.close()
    items: list[ItemResult] = []
    for item in test.items:
        answer = done.get(keys[item.id])
        if answer is None:
            continue  # not answered yet (--limit): a later run answers it
        s = score_item(test.suite, item, answer.text, scoring)
        items.append(
            ItemResult(
                id=item.id,
                question=item.question,
                reference=item.answer,
                answer=answer.text,
                part=s.part,
                correct=s.correct,
                precision=s.precision,
                recall=s.recall,
                f1=s.f1,
                categories=dict(item.categories),
                retrieved=list(answer.retrieved),
                image=_image_key(item),
                leaked=item.id in leak.items,
                prompt=answer.prompt,
                raw=answer.raw,
                text=dict(s.text),
            )
        )
    policy = (
        "none checked"
        if leakage is None
        else (
            f"{len(leak.items)} items leak; their own image/patient hidden from retrieval"
            if exclude_leaked
            else f"{len(leak.items)} items leak and were allowed"
        )
    )
    return RunResult(test.suite, getattr(answerer, "name", "?"), scoring, items, len(test.skipped), policy)
