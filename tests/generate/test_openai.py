"""The LLM generator's prompt packing and the mapping of its JSON answer to evidence (no server here;
the integration test in tests/integration drafts through a real vLLM server)."""

from __future__ import annotations

from typing import Any

import pytest

from rag.draft import DRAFT_SCHEMA, Drafter, OpenAIGenerator, build_prompt
from rag.generate.openai import DraftError, LLMDraft, draft_schema
from rag.generate.report import CaseEvidence, MeasurementEvidence
from tests.conftest import EmbeddedArchive


class _Client:
    """Answers with a fixed JSON document and records what it was asked."""

    model = "canned"

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls: list[dict[str, Any]] = []

    def complete_json(
        self,
        messages: list[dict[str, str]],
        schema: dict[str, Any],
        *,
        schema_name: str,
        max_tokens: int,
        temperature: float = 0.0,
        frequency_penalty: float = 0.0,
    ) -> Any:
        self.calls.append({"messages": messages, "schema": schema, "max_tokens": max_tokens})
        return self.answer


@pytest.fixture(scope="module")
def context(embedded_archive: EmbeddedArchive) -> Any:
    drafter = Drafter(embedded_archive.config, kb=None)
    study = int(drafter.retriever.studies.study_ids[0])
    return drafter.context(study)


def test_prompt_numbers_cases_states_k_and_marks_references(context: Any) -> None:
    packed = build_prompt(context, budget=100_000)
    user = packed.messages[1]["content"]
    system = packed.messages[0]["content"]
    assert "not diagnoses" in user and "not diagnoses" in system
    assert f"the {context.provenance.k} nearest report sections" in user
    n_hits = sum(len(h) for h in context.retrieval.sections.values())
    assert len(packed.cases) == n_hits and not packed.dropped
    assert all(f"[{i}] " in user for i in packed.cases)
    lvef = context.predictions.predictions["lvef"]
    assert f"lvef: {lvef.value:.0f}%" in user


def test_a_small_budget_drops_low_ranked_cases_first_and_lists_them(context: Any) -> None:
    full = build_prompt(context, budget=100_000)
    small = build_prompt(context, budget=full.tokens // 2)
    assert small.tokens <= full.tokens // 2
    assert small.dropped and len(small.cases) + len(small.dropped) == len(full.cases)
    kept_ranks = [c.rank for c in small.cases.values()]
    dropped_ranks = [int(d.split(" rank ")[1].split()[0]) for d in small.dropped]
    assert max(kept_ranks) <= max(dropped_ranks)
    assert 1 in kept_ranks
    with pytest.raises(DraftError, match="context_tokens"):
        build_prompt(context, budget=50)


def test_answer_maps_to_sentences_with_cited_cases_and_voted_numbers(context: Any) -> None:
    packed = build_prompt(context, budget=100_000)
    first = packed.cases[1]
    answer = {
        "sections": [
            {
                "name": first.section,
                "sentences": [
                    {"text": "LVEF 61% with normal size.", "cases": [1, 99], "passages": [3]},
                    {"text": "Peak velocity 2.7 m/s.", "cases": [], "passages": []},
                ],
            }
        ]
    }
    client = _Client(answer)
    report = OpenAIGenerator(client, context_tokens=100_000, max_tokens=300).generate(context)
    assert client.calls[0]["schema"] == draft_schema(len(packed.cases), len(packed.passages))
    assert client.calls[0]["max_tokens"] == 300
    section = report.section(first.section)
    assert section is not None and len(section.sentences) == 2
    s0 = section.sentences[0]
    cases = [e for e in s0.evidence if isinstance(e, CaseEvidence)]
    assert [c.report_section_id for c in cases] == [first.report_section_id]
    voted = context.predictions.predictions["lvef"].value
    assert f"LVEF {voted:.0f}%" in s0.text
    assert any(isinstance(e, MeasurementEvidence) and e.name == "lvef" for e in s0.evidence)
    assert "2.7" not in section.sentences[1].text
    joined = " ".join(report.warnings)
    assert "[99]" in joined and "[P3]" in joined and "cites no reference case" in joined
    assert report.provenance.generator == "openai" and report.provenance.model == "canned"


def test_an_answer_off_the_schema_is_a_clear_error(context: Any) -> None:
    with pytest.raises(DraftError, match="does not match the report schema"):
        OpenAIGenerator(_Client({"sections": [{"title": "x"}]}), context_tokens=100_000).generate(context)


def test_schema_bounds_the_answer_so_decoding_ends() -> None:
    schema = draft_schema(4, 0)
    sections = schema["properties"]["sections"]
    sentence = sections["items"]["properties"]["sentences"]
    assert sections["maxItems"] == 15 and sentence["maxItems"] == 4
    cites = sentence["items"]["properties"]
    assert cites["cases"]["items"]["enum"] == [1, 2, 3, 4] and cites["cases"]["maxItems"] == 3
    assert cites["passages"]["maxItems"] == 0
    assert cites["text"]["maxLength"] == 300


def test_schema_agrees_with_the_pydantic_model() -> None:
    sample = {"sections": [{"name": "Left Ventricle", "sentences": [{"text": "x", "cases": [1], "passages": []}]}]}
    assert LLMDraft.model_validate(sample).sections[0].name == "Left Ventricle"
    props = DRAFT_SCHEMA["properties"]["sections"]["items"]["properties"]
    assert set(props) == set(LLMDraft.model_fields["sections"].annotation.__args__[0].model_fields)  # type: ignore[union-attr]
