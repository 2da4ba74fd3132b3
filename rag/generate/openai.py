"""The ``openai`` generator: an LLM behind any OpenAI-compatible endpoint (vLLM first) drafts the report.

The prompt numbers the retrieved cases ``[1]..[n]`` and knowledge passages ``[P1]..[Pm]``, states k,
and says they are references from other patients, not diagnoses of this one. The model answers
with JSON that must match :func:`draft_schema` (sent as ``response_format: json_schema``); each
sentence lists the case and passage numbers it rests on, which become the sentence's evidence.

The context is packed into a token budget in priority order (every section's best case first, then
each section's passages, then the next-ranked cases ...); whatever does not fit is listed in
``Report.dropped_context``. Numbers in the model's sentences pass through the same filling as the
extractive draft: voted values replace stated ones, any other number with a unit is blanked.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from rag.core.errors import RagError
from rag.generate.consistency import vote_consistent
from rag.generate.context import DraftContext, assemble_report, case_evidence
from rag.generate.report import (
    CaseEvidence,
    Evidence,
    KBEvidence,
    MeasurementEvidence,
    Report,
    SectionDraft,
    Sentence,
)
from rag.generate.text import fill_measurements, format_value
from rag.vocab.sections import ECHO_SECTIONS

__all__ = [
    "DRAFT_SCHEMA",
    "JSONClient",
    "LLMDraft",
    "OpenAIGenerator",
    "PackedPrompt",
    "build_prompt",
    "draft_schema",
]


class DraftError(RagError):
    """The LLM's answer could not be turned into a report."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LLMSentence(_Strict):
    text: str
    cases: list[int]
    passages: list[int]


class LLMSection(_Strict):
    name: str
    sentences: list[LLMSentence]


class LLMDraft(_Strict):
    """What the model must answer: sections of sentences citing case and passage numbers."""

    sections: list[LLMSection]


MAX_SENTENCES = 4
MAX_CITATIONS = 3
MAX_SENTENCE_CHARS = 300


def _numbers(n: int | None) -> dict[str, Any]:
    """An array of citation numbers: any integers (n None), ``1..n``, or none at all (n 0)."""
    if n is None:
        return {"type": "array", "items": {"type": "integer"}, "maxItems": MAX_CITATIONS}
    if n == 0:
        return {"type": "array", "items": {"type": "integer"}, "maxItems": 0}
    return {"type": "array", "items": {"type": "integer", "enum": list(range(1, n + 1))}, "maxItems": MAX_CITATIONS}


def draft_schema(n_cases: int | None = None, n_passages: int | None = None) -> dict[str, Any]:
    """JSON schema of :class:`LLMDraft`, written out flat (no ``$ref``) for the widest server support.

    Bounded so that constrained decoding always ends: each of the 15 sections at most once in spirit
    (at most 15 entries), at most 4 sentences of at most 300 characters, at most 3 citations each;
    given the prompt's counts, citations may only name cases ``1..n_cases`` and passages
    ``1..n_passages``.
    """
    return {
        "type": "object",
        "properties": {
            "sections": {
                "type": "array",
                "maxItems": len(ECHO_SECTIONS),
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "enum": list(ECHO_SECTIONS)},
                        "sentences": {
                            "type": "array",
                            "maxItems": MAX_SENTENCES,
                            "items": {
                                "type": "object",
                                "properties": {
                                    "text": {"type": "string", "maxLength": MAX_SENTENCE_CHARS},
                                    "cases": _numbers(n_cases),
                                    "passages": _numbers(n_passages),
                                },
                                "required": ["text", "cases", "passages"],
                                "additionalProperties": False,
                            },
                        },
                    },
                    "required": ["name", "sentences"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["sections"],
        "additionalProperties": False,
    }


DRAFT_SCHEMA: dict[str, Any] = draft_schema()
"""The answer's schema without the per-prompt citation ranges (:func:`draft_schema`)."""

SYSTEM_PROMPT = (
    "You draft transthoracic echocardiography reports for a cardiologist to check. You are given "
    "numbered reference cases: report sections of OTHER patients' studies that a retrieval system "
    "found similar to the current study. They are references, not diagnoses of this patient. You are "
    "also given numbered knowledge passages (normal ranges and grading rules). Write the current "
    "study's report section by section. Use only statements supported by the reference cases; use the "
    "measurement values given under 'Measurements' and no other numbers. For every sentence list the "
    "numbers of the cases it rests on in 'cases' and of the passages in 'passages'. Answer with JSON only."
)


class JSONClient(Protocol):
    """An OpenAI-compatible chat client that answers with JSON matching a schema (``rag.llm.ChatClient``)."""

    model: str

    def complete_json(
        self,
        messages: list[dict[str, str]],
        schema: dict[str, Any],
        *,
        schema_name: str,
        max_tokens: int,
        temperature: float = 0.0,
        frequency_penalty: float = 0.0,
    ) -> Any: ...


def estimate_tokens(text: str) -> int:
    """A conservative token estimate for clinical text with numbers (~3 characters per token)."""
    return len(text) // 3 + 1


def tokenizer_counter(model_dir: Path) -> Callable[[str], int] | None:
    """Exact token counts with the served model's ``tokenizer.json``, when the model folder holds one."""
    path = Path(model_dir) / "tokenizer.json"
    if not path.is_file():
        return None
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids) + 4  # + chat-template markers


@dataclass(frozen=True)
class PackedPrompt:
    """The chat messages, what the numbers in them refer to, and what was left out."""

    messages: list[dict[str, str]]
    cases: dict[int, CaseEvidence]
    passages: dict[int, KBEvidence]
    dropped: list[str]
    tokens: int

    @property
    def schema(self) -> dict[str, Any]:
        """The answer's schema, citations limited to the numbers this prompt holds."""
        return draft_schema(len(self.cases), len(self.passages))


def _measurement_lines(context: DraftContext) -> list[str]:
    lines = []
    for name, pred in context.predictions.predictions.items():
        if pred.kind == "continuous" and pred.value is not None:
            lines.append(f"- {name}: {format_value(pred.value, pred.unit)} (vote of {len(pred.neighbours)} neighbours)")
    for name, pred in context.predictions.predictions.items():
        if pred.kind == "finding" and pred.probability is not None:
            lines.append(f"- {name}: probability {pred.probability:.2f}")
    return lines


def build_prompt(
    context: DraftContext, *, budget: int, count_tokens: Callable[[str], int] = estimate_tokens
) -> PackedPrompt:
    """Number the context's cases and passages and pack them into ``budget`` prompt tokens.

    Priority: rank-1 case of every section, then every section's passages, then rank-2 cases, rank-3 ...
    """
    k = context.provenance.k
    head = (
        f"Current study: {context.study_id} ({context.study_date or 'undated'}). For each section, the {k} "
        "nearest report sections of other patients' prior studies were retrieved.\n"
        "Measurements (neighbour vote, use these values):\n" + "\n".join(_measurement_lines(context) or ["- none"])
    )
    tail = "\nWrite the report as JSON."
    used = count_tokens(SYSTEM_PROMPT) + count_tokens(head) + count_tokens(tail) + 16
    if used > budget:
        raise DraftError(
            f"the fixed prompt needs ~{used} tokens but llm.context_tokens is {budget}; raise llm.context_tokens"
        )
    candidates: list[tuple[str, Any]] = []
    ranked = {s: hits for s, hits in context.retrieval.sections.items() if hits}
    depth = max((len(h) for h in ranked.values()), default=0)
    for rank in range(depth):
        candidates += [("case", hits[rank]) for hits in ranked.values() if rank < len(hits)]
        if rank == 0:
            for section in ranked:
                candidates += [("kb", ev) for ev in context.kb.get(section, [])]
    case_lines: list[str] = []
    kb_lines: list[str] = []
    cases: dict[int, CaseEvidence] = {}
    passages: dict[int, KBEvidence] = {}
    seen_kb: set[str] = set()
    dropped: list[str] = []
    for kind, item in candidates:
        if kind == "case":
            number = len(cases) + 1
            line = f"[{number}] {item.section} (similarity {item.similarity:.3f}): {item.text}"
            label = f"case {item.section} rank {item.rank} (study {item.study_id}, section {item.report_section_id})"
        else:
            if item.chunk_id in seen_kb:
                continue
            number = len(passages) + 1
            text = context.kb_texts.get(item.chunk_id, "")
            line = f"[P{number}] {item.heading or item.source}: {text}"
            label = f"kb {item.chunk_id} ({item.source})"
        cost = count_tokens(line)
        if used + cost > budget:
            dropped.append(label)
            continue
        used += cost
        if kind == "case":
            cases[number] = case_evidence(item)
            case_lines.append(line)
        else:
            seen_kb.add(item.chunk_id)
            passages[number] = item
            kb_lines.append(line)
    user = "\n".join(
        [
            head,
            "Reference cases (other patients; references, not diagnoses):",
            *(case_lines or ["none"]),
            "Knowledge passages:",
            *(kb_lines or ["none"]),
            tail,
        ]
    )
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
    return PackedPrompt(messages, cases, passages, dropped, used)


def _data_of(completion: Any) -> Any:
    """The parsed JSON of a client's answer (an object with ``.data``, or the parsed value itself)."""
    return getattr(completion, "data", completion)


class OpenAIGenerator:
    """Drafts through an OpenAI-compatible chat endpoint with a JSON-schema response format.

    Args:
        client: the chat client (``rag.llm.ChatClient``).
        context_tokens: the prompt's token budget.
        max_tokens: the answer's token limit.
        temperature: sampling temperature (0: greedy).
        count_tokens: token counter for packing (default: an estimate of ~3 characters per token;
            :func:`tokenizer_counter` counts exactly with the served model's tokenizer).
    """

    name = "openai"

    def __init__(
        self,
        client: JSONClient,
        *,
        context_tokens: int = 1536,
        max_tokens: int = 768,
        temperature: float = 0.0,
        count_tokens: Callable[[str], int] = estimate_tokens,
    ) -> None:
        self.client = client
        self.context_tokens = context_tokens
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.count_tokens = count_tokens
        self.last_completion: Any = None

    def generate(self, context: DraftContext) -> Report:
        """A report for the context's study, drafted by the model.

        Raises:
            DraftError: the answer does not match the schema.
            rag.llm.LLMError: the endpoint failed (unreachable, HTTP error, truncated JSON).
        """
        prompt = build_prompt(context, budget=self.context_tokens, count_tokens=self.count_tokens)
        completion = self.client.complete_json(
            prompt.messages,
            prompt.schema,
            schema_name="echo_report_draft",
            max_tokens=self.max_tokens,
            temperature=self.temperature,
        )
        self.last_completion = completion
        try:
            draft = LLMDraft.model_validate(_data_of(completion))
        except ValidationError as error:
            raw = json.dumps(_data_of(completion))[:300]
            raise DraftError(f"the model's answer does not match the report schema: {error}; answer: {raw}") from error
        sections, warnings = to_sections(draft, prompt, context.voted_values)
        sections, replaced = vote_consistent(context, sections)
        warnings += replaced
        return assemble_report(
            context,
            sections,
            generator=self.name,
            model=getattr(self.client, "model", None),
            dropped_context=prompt.dropped,
            warnings=warnings,
        )


def to_sections(
    draft: LLMDraft, prompt: PackedPrompt, voted: Mapping[str, tuple[float, str | None]]
) -> tuple[list[SectionDraft], list[str]]:
    """The model's sections as drafted sections with evidence; warnings for unknown citations."""
    warnings: list[str] = []
    merged: dict[str, list[Sentence]] = {}
    for section in draft.sections:
        if section.name not in ECHO_SECTIONS:
            warnings.append(f"the model wrote an unknown section {section.name!r}; left out")
            continue
        for s in section.sentences:
            if not s.text.strip():
                continue
            done = fill_measurements(s.text.strip(), voted)
            evidence: list[Evidence] = []
            for n in s.cases:
                if n in prompt.cases:
                    evidence.append(prompt.cases[n])
                else:
                    warnings.append(f"{section.name}: the model cited case [{n}], which the prompt did not hold")
            for n in s.passages:
                if n in prompt.passages:
                    evidence.append(prompt.passages[n])
                else:
                    warnings.append(f"{section.name}: the model cited passage [P{n}], which the prompt did not hold")
            evidence += [MeasurementEvidence(name=n, value=round(v, 3), unit=u) for n, v, u in done.filled]
            if done.blanked:
                warnings.append(f"{section.name}: {', '.join(done.blanked)} left blank (not from the neighbour vote)")
            if not any(isinstance(e, CaseEvidence) for e in evidence):
                warnings.append(f"{section.name}: a sentence cites no reference case: {done.text[:80]!r}")
            merged.setdefault(section.name, []).append(Sentence(text=done.text, evidence=evidence))
    return [SectionDraft(name=n, sentences=s) for n, s in merged.items()], warnings
