"""Answerers behind one protocol: the retrieval-only answerer (the embedded default) and two baselines.

- :class:`RetrievalAnswerer`: the k training items nearest by question and image embeddings vote on
  the answer (similarity-weighted, answers compared after normalisation); multiple-choice options
  are scored by the weight of the neighbours that gave them.
- :class:`MajorityAnswerer`: the training split's most frequent answer of the item's answer type.
- question-only nearest neighbour: ``RetrievalAnswerer(corpus, k=1, image_weight=0)``.

Every answer records what was retrieved (corpus item IDs and similarities).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from rag.eval.vqa.corpus import Corpus
from rag.eval.vqa.items import VQAItem
from rag.eval.vqa.scoring import normalise

__all__ = ["Answer", "Answerer", "MajorityAnswerer", "RetrievalAnswerer"]


@dataclass(frozen=True)
class Answer:
    """One answer with its provenance: the retrieved items, the prompt and the raw response (for models)."""

    text: str
    retrieved: list[tuple[str, float]] = field(default_factory=list)
    prompt: str | None = None
    raw: str | None = None
    tokens: tuple[int, int] | None = None


class Answerer(Protocol):
    """Answers one item; ``excluded`` are corpus rows it may not use (the leakage policy's exclusions)."""

    name: str

    @property
    def fingerprint(self) -> str: ...

    def answer(self, item: VQAItem, excluded: Collection[int] = ()) -> Answer: ...


class MajorityAnswerer:
    """The most frequent training answer of the item's answer type (closed / open)."""

    name = "majority"

    def __init__(self, train: Sequence[VQAItem]) -> None:
        self.by_type: dict[str, str] = {}
        for kind in sorted({it.answer_type for it in train}):
            counts = Counter(normalise(it.answer) for it in train if it.answer_type == kind)
            self.by_type[kind] = counts.most_common(1)[0][0]
        overall = Counter(normalise(it.answer) for it in train).most_common(1)
        self.fallback = overall[0][0] if overall else ""

    @property
    def fingerprint(self) -> str:
        return "majority:" + ",".join(f"{k}={v}" for k, v in sorted(self.by_type.items()))

    def answer(self, item: VQAItem, excluded: Collection[int] = ()) -> Answer:
        return Answer(self.by_type.get(item.answer_type, self.fallback))


class RetrievalAnswerer:
    """Nearest training items by question (and image) similarity vote on the answer."""

    def __init__(self, corpus: Corpus, *, k: int = 10, image_weight: float = 0.5, name: str | None = None) -> None:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if image_weight < 0:
            raise ValueError(f"image_weight must be >= 0, got {image_weight}")
        self.corpus = corpus
        self.k = k
        self.image_weight = image_weight
        self.name = name or ("retrieval" if image_weight > 0 else "question-nn")
        self._questions: dict[str, np.ndarray] = {}

    @property
    def fingerprint(self) -> str:
        return f"{self.name}:k={self.k}:iw={self.image_weight}:corpus={self.corpus.version}"

    def prepare(self, items: Sequence[VQAItem]) -> None:
        """Embed the questions of many items in one pass (answers then need no model call each)."""
        todo = sorted({it.question for it in items} - set(self._questions))
        for text, vector in zip(todo, self.corpus.text.encode(todo), strict=True):
            self._questions[text] = vector

    def neighbours(self, item: VQAItem, excluded: Collection[int] = ()) -> list[tuple[int, float]]:
        """(corpus row, similarity) of the k nearest items, most similar first."""
        c = self.corpus
        if item.question not in self._questions:
            self.prepare([item])
        q = self._questions[item.question]
        sims = c.questions @ q
        if self.image_weight > 0 and c.images is not None and item.images:
            sims = sims + self.image_weight * (c.images @ c.embed_image(item.images[0]))
        if excluded:
            sims = sims.copy()
            sims[list(excluded)] = -np.inf
        order = np.argsort(-sims, kind="stable")[: self.k]
        return [(int(r), float(sims[r])) for r in order if np.isfinite(sims[r])]

    def answer(self, item: VQAItem, excluded: Collection[int] = ()) -> Answer:
        hits = self.neighbours(item, excluded)
        votes: dict[str, float] = {}
        for row, sim in hits:
            key = normalise(self.corpus.items[row].answer)
            votes[key] = votes.get(key, 0.0) + max(sim, 1e-6)
        retrieved = [(self.corpus.items[r].id, round(s, 6)) for r, s in hits]
        if item.options:
            scored = {letter: votes.get(normalise(text), 0.0) for letter, text in item.options.items()}
            best = max(sorted(scored), key=lambda letter: scored[letter])
            return Answer(best, retrieved)
        text = max(sorted(votes), key=lambda a: votes[a]) if votes else ""
        return Answer(text, retrieved)
