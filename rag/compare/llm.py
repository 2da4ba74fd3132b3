"""The comparison's narrative written by a served model, under the drafts' rules.

The model sees the calls (measurement deltas, finding calls) and the numbered evidence, and answers
JSON matching :func:`narrative_schema` (``response_format: json_schema``): statements, each with the
phenotype it is about and the evidence numbers it cites. Then the rules are enforced, not trusted:

- a statement must cite at least one number, all of them from the evidence list;
- a statement about a phenotype must agree with its call: a change word ("new", "worse", "increased",
  "resolved", ...) only where the call is a change, and of the same direction; "unchanged" wording only
  where the call is unchanged;
- a change that no kept statement states gets the extractive statement for it.

Statements that break a rule are replaced and listed in the comparison's warnings.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from rag.compare.narrative import extractive_statements, finding_text, measurement_text
from rag.compare.result import Comparison, Statement
from rag.core.errors import RagError
from rag.generate.openai import JSONClient
from rag.llm.errors import LLMOutputError

__all__ = ["NarrativeError", "OpenAINarrator", "narrative_schema"]

RETRY_PENALTY = 0.5
"""Frequency penalty of the second request when the first answer was cut or not JSON."""
_UP = re.compile(r"\b(new|worse|worsened|increased|increase|rose|higher|larger|progress\w*|deteriorat\w*)\b", re.I)
_DOWN = re.compile(r"\b(resolved|better|improved|decreased|decrease|fell|lower|smaller|regress\w*)\b", re.I)
_SAME = re.compile(r"\b(unchanged|stable|no change|no significant change|similar)\b", re.I)


class NarrativeError(RagError):
    """The model's answer is not the narrative schema."""


class _LLMStatement(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    about: str | None
    evidence: list[int]


class _LLMNarrative(BaseModel):
    model_config = ConfigDict(extra="forbid")
    statements: list[_LLMStatement]


def narrative_schema(names: list[str], n_evidence: int) -> dict[str, Any]:
    """The JSON schema of the answer: statements about the named phenotypes, citing 1..n_evidence."""
    number = {"type": "integer", "minimum": 1, "maximum": max(n_evidence, 1)}
    statement = {
        "type": "object",
        "properties": {
            "text": {"type": "string"},
            "about": {"anyOf": [{"type": "string", "enum": names}, {"type": "null"}]},
            "evidence": {"type": "array", "items": number, "minItems": 1},
        },
        "required": ["text", "about", "evidence"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"statements": {"type": "array", "items": statement, "minItems": 1}},
        "required": ["statements"],
        "additionalProperties": False,
    }


def _direction(comparison: Comparison, name: str) -> int | None:
    """+1 (worse / higher), -1 (better / lower), 0 (unchanged), None (no such call)."""
    m = comparison.measurement(name)
    if m is not None:
        return {"increased": 1, "decreased": -1}.get(m.call or "", 0)
    f = comparison.finding(name)
    if f is not None:
        return (f.current_grade > f.prior_grade) - (f.current_grade < f.prior_grade)
    return None


def _prompt(comparison: Comparison) -> list[dict[str, str]]:
    facts = []
    for m in comparison.measurements:
        if m.prior is not None and m.current is not None:
            facts.append(
                f"- {m.name}: prior {m.prior} {m.unit or ''}, now {m.current}, change {m.delta} ({m.call}); "
                f"evidence {m.evidence}"
            )
    for f in comparison.findings:
        facts.append(
            f"- {f.name}: prior grade {f.prior_grade}, now {f.current_grade} ({f.call}); evidence {f.evidence}"
        )
    evidence = [
        f"[{e.number}] {e.kind} study {e.study_id} {e.role} {e.section or ''}".rstrip() for e in comparison.evidence
    ]
    date = comparison.prior_date.isoformat() if comparison.prior_date else "the prior study"
    user = "\n".join(
        [
            f"Compare the current echocardiogram with the prior study of {date}.",
            "Calls (use them exactly; do not add findings, numbers or directions of your own):",
            *facts,
            "Evidence:",
            *evidence,
            "Write one statement per change (about = its name) and one closing statement that everything else "
            "is unchanged (about = null). Cite evidence numbers for every statement.",
        ]
    )
    system = (
        "You write the comparison paragraph of an echocardiography report. Every statement cites its evidence "
        "numbers and states only the calls you are given."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


class OpenAINarrator:
    """Writes a comparison's statements through an OpenAI-compatible endpoint (vLLM)."""

    name = "openai"

    def __init__(self, client: JSONClient, *, max_tokens: int = 512, temperature: float = 0.0) -> None:
        self.client = client
        self.max_tokens = max_tokens
        self.temperature = temperature

    def narrate(self, comparison: Comparison) -> Comparison:
        """``comparison`` with the model's statements (rule-breaking ones replaced, see the module)."""
        if comparison.status != "compared":
            return comparison
        names = [m.name for m in comparison.measurements] + [f.name for f in comparison.findings]
        messages, schema = _prompt(comparison), narrative_schema(names, len(comparison.evidence))

        def ask(penalty: float) -> Any:
            return self.client.complete_json(
                messages,
                schema,
                schema_name="echo_comparison",
                max_tokens=self.max_tokens,
                temperature=self.temperature,
                frequency_penalty=penalty,
            )

        try:
            completion = ask(0.0)
        except LLMOutputError as first:  # cut or not JSON: a small model repeating itself; ask once more
            try:
                completion = ask(RETRY_PENALTY)
            except LLMOutputError as second:
                note = f"the model's narrative was unusable twice ({first}; then {second}); the extractive one is kept"
                return comparison.model_copy(update={"warnings": [*comparison.warnings, note[:600]]})
        data = getattr(completion, "data", completion)
        try:
            answer = _LLMNarrative.model_validate(data)
        except ValidationError as e:
            raise NarrativeError(
                f"the model's answer is not a comparison narrative: {e}; {json.dumps(data)[:300]}"
            ) from e
        kept, warnings = self._enforce(comparison, answer)
        model = getattr(self.client, "model", None)
        return comparison.model_copy(
            update={
                "statements": kept,
                "generator": f"openai:{model}" if model else "openai",
                "warnings": [*comparison.warnings, *warnings],
            }
        )

    def _enforce(self, comparison: Comparison, answer: _LLMNarrative) -> tuple[list[Statement], list[str]]:
        numbers = {e.number for e in comparison.evidence}
        kept: list[Statement] = []
        warnings: list[str] = []
        stated: set[str] = set()
        for n, s in enumerate(answer.statements, 1):
            why = None
            if not s.evidence or not set(s.evidence) <= numbers:
                why = f"cites {s.evidence}, not numbers of the evidence list"
            elif s.about is not None:
                want = _direction(comparison, s.about)
                said = 1 if _UP.search(s.text) else (-1 if _DOWN.search(s.text) else 0)
                if want is None:
                    why = f"is about {s.about!r}, which has no call"
                elif want != 0 and said != want:
                    why = f"states {s.about} against its call"
                elif want == 0 and said != 0:
                    why = f"states a change of {s.about}, which is unchanged"
            elif _UP.search(s.text) or _DOWN.search(s.text):
                why = "states a change without naming what changed"
            if why is not None:
                warnings.append(f"model statement {n} left out: it {why}")
                continue
            kind = "summary" if s.about is None else ("measurement" if comparison.measurement(s.about) else "finding")
            kept.append(Statement(text=s.text, evidence=sorted(set(s.evidence)), kind=kind, name=s.about))
            if s.about is not None:
                stated.add(s.about)
        for ex in extractive_statements(comparison):
            if ex.name is not None and ex.name not in stated:
                m, f = comparison.measurement(ex.name), comparison.finding(ex.name)
                text = measurement_text(m) if m is not None else finding_text(f) if f is not None else ex.text
                kept.append(ex.model_copy(update={"text": text[0].upper() + text[1:] + "."}))
                warnings.append(f"the model did not state the change of {ex.name}: the extractive sentence is used")
        if not any(s.kind == "summary" for s in kept):
            kept.append(extractive_statements(comparison)[-1])
        return kept, warnings
