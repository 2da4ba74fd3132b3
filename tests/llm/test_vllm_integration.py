"""The real thing: the converted SmolLM2 model served by vLLM (CPU build here), asked for schema-bound JSON,
then drafting a report of a stored study end to end through the ``openai`` generator."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from rag.draft import DRAFT_SCHEMA, Drafter, OpenAIGenerator
from rag.generate.openai import LLMDraft, tokenizer_counter
from rag.generate.report import CaseEvidence
from rag.llm import ChatClient, VLLMServer
from tests.conftest import EmbeddedArchive


class ValveFinding(BaseModel):
    """The small answer the model must give."""

    model_config = ConfigDict(extra="forbid")

    valve: Literal["mitral", "aortic", "tricuspid", "pulmonary"]
    regurgitation: Literal["none", "mild", "moderate", "severe"]
    summary: str = Field(max_length=160)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _group_members(pgid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[2] == str(pgid) and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


@pytest.mark.integration
@pytest.mark.slow
def test_vllm_serves_schema_bound_json_and_drafts_a_report(
    prepared_model: Path, vllm_venv: Path, tmp_path: Path, embedded_archive: EmbeddedArchive
) -> None:
    schema = ValveFinding.model_json_schema()
    messages = [
        {"role": "system", "content": "You summarise echocardiography findings as JSON."},
        {"role": "user", "content": "Finding: moderate mitral regurgitation with a central jet. Give the JSON."},
    ]
    server = VLLMServer(
        prepared_model,
        venv=vllm_venv,
        served_model_name="smollm2-test",
        log_path=tmp_path / "vllm.log",
        max_model_len=2048,
        startup_timeout=420,
    )
    with server:
        pid = server.pid
        assert pid is not None and server.running
        assert len(_group_members(pid)) >= 2  # the API server and its engine process
        client = ChatClient(server.base_url, "smollm2-test", timeout=120)
        assert client.health() and client.models() == ["smollm2-test"]
        done = client.complete_json(messages, schema, schema_name="valve_finding", max_tokens=120)
        finding = ValveFinding.model_validate(done.data)
        print(
            f"\nstartup={server.startup_seconds:.1f}s answer={done.text!r} "
            f"prompt={done.usage.prompt_tokens} completion={done.usage.completion_tokens} "
            f"seconds={done.usage.seconds:.2f} tokens/s={done.usage.tokens_per_second:.1f}"
        )
        assert done.finish_reason == "stop"
        assert finding.valve == "mitral"  # named in the prompt; greedy decoding copies it
        assert done.usage.prompt_tokens > 20 and done.usage.completion_tokens > 5
        assert done.model == "smollm2-test"

        # a whole draft: numbered cases and passages in, schema-bound JSON out, evidence mapped back
        drafter = Drafter(embedded_archive.config, kb=None)
        study = int(drafter.retriever.studies.study_ids[0])
        counter = tokenizer_counter(prepared_model)
        assert counter is not None
        generator = OpenAIGenerator(client, context_tokens=1100, max_tokens=700, count_tokens=counter)
        report = generator.generate(drafter.context(study))
        answer = generator.last_completion
        LLMDraft.model_validate(answer.data)  # the answer validates against the schema it was bound to
        assert answer.finish_reason == "stop", answer.text[-300:]
        print(
            f"draft: {len(report.sections)} sections, {sum(len(x.sentences) for x in report.sections)} sentences, "
            f"{len(report.dropped_context)} dropped, prompt={answer.usage.prompt_tokens} "
            f"completion={answer.usage.completion_tokens} tokens/s={answer.usage.tokens_per_second:.1f}\n"
            f"{report.text[:600]}"
        )
        assert report.provenance.generator == "openai" and report.provenance.model == "smollm2-test"
        assert report.study_id == study and report.measurements and report.clips
        assert answer.usage.prompt_tokens <= 1100  # packed with the model's own tokenizer
        names = {s.name for s in report.sections}
        assert names <= set(DRAFT_SCHEMA["properties"]["sections"]["items"]["properties"]["name"]["enum"])
        cited = [e for s in report.sections for x in s.sentences for e in x.evidence if isinstance(e, CaseEvidence)]
        assert all(e.study_id != study for e in cited)

        # the VQA harness against the same server: SmolLM2 is text-only, so question-only, both arms
        from rag.eval.vqa.harness import VQARun, evaluate_vqa
        from tests.eval.vqa._suite import write_vqa_rad

        suite = write_vqa_rad(tmp_path / "vqa_rad")
        run = VQARun(
            "vqa-rad",
            suite,
            answerer="openai",
            leakage="exclude",
            base_url=server.base_url,
            model="smollm2-test",
            images=False,
            out=tmp_path / "vqa",
        )
        vqa = evaluate_vqa(run, echo=lambda _: None)
        plain, rag = vqa.runs
        assert [len(plain.items), len(rag.items)] == [2, 2] and vqa.comparison is not None
        assert all(it.raw is not None and it.prompt for it in plain.items + rag.items)
        assert all(it.retrieved for it in rag.items) and not any(it.retrieved for it in plain.items)
        print(f"vqa: {[it.answer for it in plain.items]} / rag {[it.answer for it in rag.items]}")

        # a comparison's narrative from the same server: schema-bound, then held to the calls
        from rag.compare import Comparer
        from rag.compare.llm import OpenAINarrator

        comparer = Comparer(drafter)
        ids = sorted(int(s) for s in drafter.retriever.studies.study_ids)
        base = comparer.compare(ids[-1], prior=ids[0])
        told = OpenAINarrator(client, max_tokens=400).narrate(base)
        numbers = {e.number for e in told.evidence}
        assert told.generator == "openai:smollm2-test" and told.statements
        assert all(st.evidence and set(st.evidence) <= numbers for st in told.statements)
        assert {st.name for st in told.statements if st.name} >= {c.name for c in told.changed()}
        print(f"comparison: {told.text[:300]} | warnings: {told.warnings[:3]}")
    assert not server.running and server.pid is None
    assert not _alive(pid) and _group_members(pid) == []
    assert "Application startup complete" in (tmp_path / "vllm.log").read_text()
