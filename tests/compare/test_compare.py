"""Comparing a study with the patient's prior one, on a small ingested, embedded archive."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import rag
from rag.compare import Comparer, Comparison, find_prior
from rag.compare.calls import ChangeModel, ChangeRule, Sample
from rag.compare.pairs import ChangePairIndex
from rag.core.errors import RagError
from rag.draft import Drafter
from rag.vocab.sections import ECHO_SECTIONS
from tests.conftest import KEY, EmbeddedArchive


@pytest.fixture(scope="module")
def comparer(embedded_archive: EmbeddedArchive) -> Comparer:
    return Comparer(Drafter(embedded_archive.config, kb=None))


def _by_patient(comparer: Comparer) -> dict[int, list[int]]:
    catalog = comparer.drafter.retriever.catalog
    out: dict[int, list[int]] = {}
    for sid in sorted(int(s) for s in catalog.study_ids):
        out.setdefault(catalog.study(sid).patient_id, []).append(sid)
    return out


def test_the_prior_is_found_across_shifted_dates(comparer: Comparer, embedded_archive: EmbeddedArchive) -> None:
    follow_up = next(ids for ids in _by_patient(comparer).values() if len(ids) == 2)
    catalog = comparer.drafter.retriever.catalog
    dates = sorted((catalog.study(s).study_date, s) for s in follow_up)
    (first_date, first), (second_date, second) = dates
    with (embedded_archive.archive / "truth" / "studies.csv").open() as f:
        truth_dates = sorted(row["date"] for row in csv.DictReader(f) if row["n_studies"] == "2")
    assert first_date is not None and second_date is not None
    assert first_date.isoformat() not in truth_dates  # stored dates are shifted per patient ...
    true_gap = dt.date.fromisoformat(truth_dates[1]) - dt.date.fromisoformat(truth_dates[0])
    assert second_date - first_date == true_gap  # ... and the interval survives
    lookup = find_prior(comparer.drafter.store, second)
    assert (lookup.prior_id, lookup.prior_date) == (first, first_date)
    c = comparer.compare(second)
    assert c.status == "compared" and c.prior_study_id == first and c.interval_days == true_gap.days
    assert c.text.startswith(f"Compared with the study of {first_date.isoformat()} ({true_gap.days} days earlier): ")


def test_a_patient_with_one_study_gets_no_prior_not_an_error(comparer: Comparer) -> None:
    lone = next(ids[0] for ids in _by_patient(comparer).values() if len(ids) == 1)
    c = comparer.compare(lone)
    assert c.status == "no prior" and c.prior_study_id is None
    assert c.reason == "the patient has no other stored study"
    assert c.text == "No prior study to compare with: the patient has no other stored study."
    first = next(ids for ids in _by_patient(comparer).values() if len(ids) == 2)
    earliest = min(first, key=lambda s: comparer.drafter.retriever.catalog.study(s).study_date)
    assert comparer.compare(earliest).reason == "the patient has no earlier stored study"


def _with_changes(comparer: Comparer) -> Comparison:
    """The follow-up study compared with another patient's study under thresholds low enough that
    changes are called (the tiny archive's one follow-up pair reads alike twice)."""
    follow_up = max(next(ids for ids in _by_patient(comparer).values() if len(ids) == 2))
    low = ("mitral_regurgitation", "la_dilation", "lvef", "pasp")
    comparer.model = ChangeModel(rules={n: ChangeRule(lam=1.0, tau=1e-3) for n in low}, pair_k=5)
    try:
        for ids in _by_patient(comparer).values():
            if len(ids) == 1:
                c = comparer.compare(follow_up, prior=ids[0])
                if c.changed():
                    return c
    finally:
        comparer.model = ChangeModel()
    raise AssertionError("no other patient's study reads differently enough")


def test_every_statement_cites_evidence_that_exists(comparer: Comparer) -> None:
    c = _with_changes(comparer)
    numbers = {e.number for e in c.evidence}
    assert numbers == set(range(1, len(c.evidence) + 1))
    assert c.statements
    for s in c.statements:
        assert s.evidence and set(s.evidence) <= numbers, s
    stated = [s for s in c.statements if s.kind != "summary"]
    assert stated, c.text
    for s in stated:
        call = c.finding(s.name) if s.kind == "finding" else c.measurement(s.name)  # type: ignore[arg-type]
        assert call is not None and call.call not in ("unchanged", None), s
    # a neighbour cited never belongs to the patient compared
    assert "belongs to another patient" in c.warnings[0]
    catalog = comparer.drafter.retriever.catalog
    for e in c.evidence:
        if e.kind == "neighbour":  # a study's own patient never votes on it
            read = c.current_study_id if e.role == "current" else c.prior_study_id
            assert catalog.study(e.study_id).patient_id != catalog.study(int(read or 0)).patient_id
    again = type(c).from_json(c.to_json())
    assert again == c


def test_a_study_compared_with_itself_calls_nothing_changed(comparer: Comparer) -> None:
    for study in sorted(int(s) for s in comparer.drafter.retriever.studies.study_ids):
        c = comparer.compare(study, prior=study)
        assert c.findings and all(f.call == "unchanged" for f in c.findings)
        assert all(m.call in ("unchanged", None) and not m.delta for m in c.measurements)
        assert all(s.shift is None or abs(s.shift) < 1e-5 for s in c.shifts)
        assert c.statements[-1].text.endswith("No significant change.")
        assert "the study is compared with itself" in c.warnings


def test_rag_compare_is_callable_and_the_command_writes_html(
    embedded_archive: EmbeddedArchive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag.cli import app

    monkeypatch.setenv("RAG_HOME", str(embedded_archive.config.home))
    monkeypatch.setenv("RAG_PSEUDONYM_KEY", KEY)
    monkeypatch.setenv("RAG_INGEST__SIZE", "64")
    comparer = Comparer(Drafter(embedded_archive.config, kb=None))
    follow_up = max(next(ids for ids in _by_patient(comparer).values() if len(ids) == 2))
    c = rag.compare(follow_up, config=embedded_archive.config)
    assert c.current_study_id == follow_up and c.status == "compared"
    out = tmp_path / "c.html"
    result = CliRunner().invoke(app, ["compare", str(follow_up), "--out", str(out), "--out", str(tmp_path / "c.json")])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert page.count("<img src='data:image/png;base64,") >= 2 and "prior (study" in page  # frames side by side
    assert json.loads((tmp_path / "c.json").read_text())["prior_study_id"] == c.prior_study_id
    bad = CliRunner().invoke(app, ["compare", "999999"])
    assert bad.exit_code != 0 and "999999" in bad.output and "Traceback" not in bad.output


def test_change_pairs_skip_the_own_patient_and_vote_by_their_reports() -> None:
    dim = 4
    emb = {}
    for sid, x in ((1, 0.0), (2, 1.0), (3, 0.0), (4, 1.0), (5, 0.0), (6, -1.0)):
        v = [0.0] * dim
        v[0] = 1.0
        v[1] = x
        vec = np.tile(np.asarray(v, np.float32), (len(ECHO_SECTIONS), 1))
        emb[sid] = (vec, np.ones(len(ECHO_SECTIONS)))
    pairs = [(1, 2), (3, 4), (5, 6)]
    labels = [({"mitral_regurgitation": 0}, {"mitral_regurgitation": 2})] * 2 + [
        ({"mitral_regurgitation": 2}, {"mitral_regurgitation": 1})
    ]
    index = ChangePairIndex(pairs, emb, {1: 10, 2: 10, 3: 20, 4: 20, 5: 30, 6: 30}, labels)
    delta = emb[2][0][0] - emb[1][0][0]
    hits = index.search("Mitral Valve", delta, 3, exclude_patient=10)
    assert [h.prior_study_id for h in hits] == [3, 5]  # patient 10's own pair is never evidence
    assert hits[0].similarity == pytest.approx(1.0) and hits[1].similarity == pytest.approx(-1.0)
    assert index.change_vote(hits, "mitral_regurgitation") == pytest.approx(1.0)  # negative similarity: no weight


def test_thresholds_keep_false_alarms_under_the_limit_and_round_trip(tmp_path: Path) -> None:
    rows = [Sample(0.1 * i, 0.0, 0) for i in range(-10, 11)] + [Sample(2.0, 0.5, 1), Sample(-1.8, -0.5, -1)]
    model = ChangeModel.fit({"pericardial_effusion": rows}, max_false_alarm=0.0)
    rule = model.rule("pericardial_effusion")
    assert rule.false_alarm == 0.0 and rule.accuracy == 1.0 and rule.changes == 2
    assert model.sign("pericardial_effusion", 2.0, 0.5) == 1 and model.sign("pericardial_effusion", 1.0, 0.0) == 0
    again = ChangeModel.load(model.save(tmp_path / "t.json"))
    assert again.rules == model.rules and again.pair_k == model.pair_k
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(RagError, match="cannot read change thresholds"):
        ChangeModel.load(tmp_path / "bad.json")


def test_a_served_model_writes_the_narrative_and_statements_against_the_calls_are_replaced(
    comparer: Comparer,
) -> None:
    from rag.compare.llm import OpenAINarrator
    from rag.llm import ChatClient
    from tests.llm._fake_openai import Canned, FakeOpenAI, chat_answer

    base = _with_changes(comparer)
    changed = next(f for f in base.findings if f.call != "unchanged")
    opposite = "has improved" if changed.call in ("new", "worse") else "has worsened"
    answer = {
        "statements": [
            {"text": f"The {changed.name} is {changed.call}.", "about": changed.name, "evidence": [1]},
            {"text": f"The {changed.name} {opposite}.", "about": changed.name, "evidence": [1]},  # against its call
            {"text": "Something improved.", "about": None, "evidence": [1]},  # a change without its name
            {"text": "Otherwise unchanged.", "about": None, "evidence": [999]},  # cites what does not exist
        ]
    }
    fake = FakeOpenAI().start()
    fake.answer("POST", "/v1/chat/completions", Canned(body=chat_answer(json.dumps(answer))))
    try:
        result = OpenAINarrator(ChatClient(fake.base_url, "tiny")).narrate(base)
        sent = fake.seen[0].body
    finally:
        fake.stop()
    assert sent["response_format"]["type"] == "json_schema"
    texts = [s.text for s in result.statements]
    assert texts[0] == f"The {changed.name} is {changed.call}." and result.generator == "openai:tiny"
    assert not any(opposite in t or "Something" in t or "Otherwise" in t for t in texts)
    assert sum("left out" in w for w in result.warnings) == 3
    numbers = {e.number for e in result.evidence}
    assert all(s.evidence and set(s.evidence) <= numbers for s in result.statements)
    stated = {s.name for s in result.statements if s.name}
    assert stated >= {c.name for c in result.changed()}  # every change is stated, by the model or extractively
    assert result.statements[-1].kind == "summary"


def test_a_cut_narrative_is_asked_again_with_a_penalty_and_else_the_extractive_one_is_kept(
    comparer: Comparer,
) -> None:
    from rag.compare.llm import RETRY_PENALTY, OpenAINarrator
    from rag.llm import ChatClient
    from tests.llm._fake_openai import Canned, FakeOpenAI, chat_answer

    base = _with_changes(comparer)
    looping = Canned(body=chat_answer('{"statements":[{"text":"1.1.1.1.1.1', finish_reason="length"))
    fake = FakeOpenAI().start()
    fake.answer("POST", "/v1/chat/completions", looping)
    try:
        kept = OpenAINarrator(ChatClient(fake.base_url, "tiny")).narrate(base)
        sent = [r.body for r in fake.seen]
    finally:
        fake.stop()
    assert len(sent) == 2 and "frequency_penalty" not in sent[0]
    assert sent[1]["frequency_penalty"] == RETRY_PENALTY
    assert kept.statements == base.statements and kept.generator == base.generator  # the extractive narrative
    assert any("unusable twice" in w and "max_tokens" in w for w in kept.warnings)


def test_the_commands_say_what_is_wrong_in_one_line(embedded_archive: EmbeddedArchive, tmp_path: Path) -> None:
    from rag.cli import app

    env = {"RAG_HOME": str(embedded_archive.config.home), "RAG_PSEUDONYM_KEY": KEY, "RAG_INGEST__SIZE": "64"}
    ckpt = str(embedded_archive.checkpoint)
    for args, message in (
        (["compare", "1", "--generator", "gpt"], "unknown generator 'gpt'"),
        (["compare", "1", "--prior", "999999"], "999999"),
        (["eval", "compare", "--archive", str(embedded_archive.archive), "--held-out-of", ckpt], "no held-out"),
        (["embed", "--checkpoint", ckpt, "--engine", "spark"], "unknown engine 'spark'"),
        (["ingest", "--dicomweb", "http://127.0.0.1:9/dicom-web"], "--study UID"),
        (["ingest"], "give files or folders"),
    ):
        r = CliRunner().invoke(app, args, env=env)
        assert r.exit_code != 0 and message in r.output and "Traceback" not in r.output, (args, r.output)
