"""An OpenAI-compatible (vision-)language model as an answerer, with or without retrieved context.

The two arms differ only in the retrieved context: the same template, the same generation settings,
the same scorer. With ``rag=True`` the nearest training items (question and image similarity, the
retrieval answerer's neighbours) are put before the question as numbered, "reference only" cases,
as MMed-RAG and RULE do; every answer records their IDs and similarities.

Images go as base64 data URLs in OpenAI content parts; ``images=False`` sends the question only
(for text-only models, e.g. SmolLM2: that measures the plumbing, not visual answering).
Transient failures (no connection, timeouts, HTTP 429/5xx) are retried with exponential backoff.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Collection
from typing import Any

from rag.eval.vqa.answerers import Answer, RetrievalAnswerer
from rag.eval.vqa.items import VQAItem
from rag.llm import ChatClient
from rag.llm.errors import LLMConnectionError, LLMHTTPError

__all__ = ["OpenAIAnswerer"]

SYSTEM = "You answer questions about medical images. Reply with the answer only: a word or a short phrase."
SYSTEM_LONG = "You interpret medical images. Follow the instruction after the images."
TEMPLATE_VERSION = "vqa-2"


def _data_url(path: Any) -> str:
    suffix = str(path).rsplit(".", 1)[-1].lower()
    kind = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png"}.get(suffix, "jpeg")
    with open(path, "rb") as f:
        return f"data:image/{kind};base64,{base64.b64encode(f.read()).decode()}"


class OpenAIAnswerer:
    """Asks a served model; ``retriever`` gives the context of the ``rag`` arm."""

    def __init__(
        self,
        client: ChatClient,
        *,
        rag: bool,
        retriever: RetrievalAnswerer | None = None,
        k: int = 3,
        images: bool = True,
        max_tokens: int = 32,
        long_max_tokens: int = 256,
        retries: int = 3,
        backoff: float = 1.0,
    ) -> None:
        if rag and retriever is None:
            raise ValueError("the rag arm needs a retriever (the training split's corpus)")
        self.client = client
        self.rag = rag
        self.retriever = retriever
        self.k = k
        self.images = images
        self.max_tokens = max_tokens
        self.long_max_tokens = long_max_tokens
        self.retries = retries
        self.backoff = backoff
        self.name = f"{client.model}{'+rag' if rag else ''}"

    @property
    def fingerprint(self) -> str:
        corpus = self.retriever.fingerprint if self.rag and self.retriever is not None else "-"
        return (
            f"openai:{self.client.model}:{TEMPLATE_VERSION}:rag={self.rag}:k={self.k}:images={self.images}:"
            f"max_tokens={self.max_tokens}/{self.long_max_tokens}:t=0:{corpus}"
        )

    def prompt(self, item: VQAItem, excluded: Collection[int] = ()) -> tuple[str, list[tuple[str, float]]]:
        """The user text and what was retrieved for it (empty in the no-rag arm)."""
        lines, retrieved = [], []
        if self.rag and self.retriever is not None:
            corpus = self.retriever.corpus
            hits = self.retriever.neighbours(item, excluded)[: self.k]
            lines.append("Reference cases (for reference only; they are other patients, not this image):")
            for n, (row, sim) in enumerate(hits, 1):
                ref = corpus.items[row]
                lines.append(f"{n}. Q: {ref.question} A: {ref.answer}")
                retrieved.append((ref.id, round(sim, 6)))
            lines.append("")
        if item.examples:
            lines.append("Examples (each with its own image, in the order the images are attached):")
            lines += [f"Q: {ex.question} A: {ex.answer}" for ex in item.examples]
            lines.append("")
        if item.long_answer:
            lines.append(item.question)  # the task's own instruction, which says how to answer
        elif item.options:
            lines.append(f"Question: {item.question}")
            lines += [f"{letter}. {text}" for letter, text in item.options.items()]
            lines.append("Answer with the option's letter.")
        else:
            lines += [f"Question: {item.question}", "Answer:"]
        return "\n".join(lines), retrieved

    def answer(self, item: VQAItem, excluded: Collection[int] = ()) -> Answer:
        text, retrieved = self.prompt(item, excluded)
        content: Any = text
        images = [p for ex in item.examples for p in ex.images] + list(item.images)
        if self.images and images:
            labels = [""] * (len(images) - len(item.images)) + list(item.image_labels or [""] * len(item.images))
            content = []
            for label, p in zip(labels, images, strict=True):
                if label:
                    content.append({"type": "text", "text": label})
                content.append({"type": "image_url", "image_url": {"url": _data_url(p)}})
            content.append({"type": "text", "text": text})
        system = SYSTEM_LONG if item.long_answer else SYSTEM
        budget = self.long_max_tokens if item.long_answer else self.max_tokens
        messages = [{"role": "system", "content": system}, {"role": "user", "content": content}]
        for attempt in range(self.retries + 1):
            try:
                done = self.client.complete_text(messages, max_tokens=budget)
                break
            except (LLMConnectionError, LLMHTTPError) as e:
                transient = not isinstance(e, LLMHTTPError) or e.status == 429 or e.status >= 500
                if not transient or attempt == self.retries:
                    raise
                time.sleep(self.backoff * 2**attempt)
        tokens = (done.usage.prompt_tokens, done.usage.completion_tokens)
        return Answer(done.text.strip(), retrieved, prompt=text, raw=done.text, tokens=tokens)
