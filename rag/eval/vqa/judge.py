"""An optional judge model for open answers: any OpenAI-compatible endpoint says whether an answer
means the same as the reference.

Exact match undercounts open answers ("left lung" vs "the left lung field"); a judge is the usual
remedy and its own source of error, so it is reported beside the exact-match figure, never instead of
it. The judge answers JSON ``{"equivalent": true|false}`` (``response_format: json_schema``) at
temperature 0; every verdict is cached (``judge.jsonl``) by a hash of the judge model, question,
reference and answer, so a re-run asks nothing again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from rag.generate.openai import JSONClient

__all__ = ["JUDGE_SCHEMA", "Judge"]

JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"equivalent": {"type": "boolean"}},
    "required": ["equivalent"],
    "additionalProperties": False,
}
_SYSTEM = (
    "You grade answers to medical image questions. Say whether the candidate answer means the same as the "
    "reference answer for this question (synonyms and extra words are fine; a different finding, side, "
    "organ, number or a hedge between options is not)."
)


class Judge:
    """Verdicts of one judge model, cached in ``cache`` (a JSONL file) when given."""

    def __init__(self, client: JSONClient, *, cache: Path | None = None, max_tokens: int = 16) -> None:
        self.client = client
        self.model = str(getattr(client, "model", "judge"))
        self.cache = cache
        self.max_tokens = max_tokens
        self._done: dict[str, bool | None] = {}
        if cache is not None and cache.is_file():
            for line in cache.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    self._done[str(row["key"])] = row["equivalent"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a line cut short by a crash: asked again

    def _key(self, question: str, reference: str, answer: str) -> str:
        payload = json.dumps([self.model, question, reference, answer], ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()

    def verdict(self, question: str, reference: str, answer: str) -> bool | None:
        """True / False, or None when the judge's answer is not the schema (counted as not judged)."""
        if not answer.strip():
            return False
        key = self._key(question, reference, answer)
        if key not in self._done:
            user = f"Question: {question}\nReference answer: {reference}\nCandidate answer: {answer}"
            messages = [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]
            done = self.client.complete_json(messages, JUDGE_SCHEMA, schema_name="judge", max_tokens=self.max_tokens)
            data = getattr(done, "data", done)
            value = data.get("equivalent") if isinstance(data, dict) else None
            self._done[key] = value if isinstance(value, bool) else None
            if self.cache is not None:
                with self.cache.open("a", encoding="utf-8") as f:
                    f.write(json.dumps({"key": key, "equivalent": self._done[key]}) + "\n")
        return self._done[key]
