"""The HTTP service on a copy of a small embedded workspace: access, audit, uploads, cases, drafts."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rag.core.config import RagConfig, load_config
from rag.store import open_store
from rag.store.access import create_key, revoke_key
from services.api.app import create_app
from tests.conftest import KEY, EmbeddedArchive


@pytest.fixture(scope="module")
def workspace(embedded_archive: EmbeddedArchive, tmp_path_factory: pytest.TempPathFactory) -> RagConfig:
    """A copy of the session's embedded workspace (uploads and audit rows must not leak into it)."""
    home = tmp_path_factory.mktemp("api") / "ws"
    shutil.copytree(embedded_archive.config.home, home)
    return load_config(home=home, pseudonym_key=KEY, ingest={"frames": 16, "size": 64})


@pytest.fixture(scope="module")
def secrets(workspace: RagConfig) -> dict[str, str]:
    store = open_store(workspace.db_url)
    try:
        out = {name: create_key(store, name, scopes)[1] for name, scopes in (
            ("reader", ["read"]), ("uploader", ["upload", "read"]), ("writer", ["upload"]), ("boss", ["admin"]),
            ("leaver", ["read"]),
        )}  # fmt: skip
    finally:
        store.close()
    return out


@pytest.fixture(scope="module")
def client(workspace: RagConfig) -> Iterator[TestClient]:
    with TestClient(create_app(workspace, max_upload_bytes=3 * 2**20, key_ttl=0.0)) as c:
        yield c


def _h(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _studies(client: TestClient, secret: str) -> list[int]:
    catalog = client.app.state.workspace.drafter.retriever.catalog  # type: ignore[attr-defined]
    return sorted(int(s) for s in catalog.study_ids)


def _audit_rows(cfg: RagConfig) -> list[tuple[str, int | None, str]]:
    db = sqlite3.connect(cfg.db_url.removeprefix("sqlite:///"))
    try:
        return [(k, s, a) for k, s, a in db.execute("SELECT key_name, study_id, action FROM audit_log ORDER BY id")]
    finally:
        db.close()


def test_open_routes_answer_without_a_key(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    spec = client.get("/openapi.json").json()
    assert "/cases/{study_id}/similar" in spec["paths"] and "/studies" in spec["paths"]
    assert client.get("/").text.startswith("<!doctype html>")


def test_no_key_a_wrong_key_or_scope_and_a_revoked_key_get_nothing(
    client: TestClient, secrets: dict[str, str], workspace: RagConfig
) -> None:
    study = _studies(client, secrets["reader"])[0]
    for headers, status in (
        ({}, 401),
        (_h("rag_not-a-key"), 401),
        ({"X-API-Key": secrets["writer"]}, 403),  # upload scope only
        (_h(secrets["boss"]), 403),  # admin does not read cases
    ):
        r = client.get(f"/cases/{study}", headers=headers)
        assert r.status_code == status, (headers, r.text)
        assert set(r.json()) == {"error"} and "report" not in r.text and "Traceback" not in r.text
    assert client.get(f"/cases/{study}", headers=_h(secrets["leaver"])).status_code == 200
    store = open_store(workspace.db_url)
    try:
        revoke_key(store, "leaver")
    finally:
        store.close()
    refused = client.get(f"/cases/{study}", headers=_h(secrets["leaver"]))
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]


def test_a_case_its_similar_cases_and_every_read_audited(
    client: TestClient, secrets: dict[str, str], workspace: RagConfig
) -> None:
    study = _studies(client, secrets["reader"])[-1]
    before = len(_audit_rows(workspace))
    case = client.get(f"/cases/{study}", headers=_h(secrets["reader"])).json()
    assert case["study_id"] == study and case["clips"] and case["report"]
    similar = client.get(f"/cases/{study}/similar", params={"k": 5}, headers=_h(secrets["reader"])).json()
    found = [c["study_id"] for c in similar["cases"]]
    scores = [c["similarity"] for c in similar["cases"]]
    assert found and study not in found and scores == sorted(scores, reverse=True)
    rows = _audit_rows(workspace)[before:]
    assert ("reader", study, "read case") in rows
    assert {s for k, s, a in rows if a == "similar cases"} == {study, *found}
    view = case["views"][0]
    filtered = client.get(f"/cases/{study}/similar", params={"view": view}, headers=_h(secrets["reader"])).json()
    assert all(view in c["views"] for c in filtered["cases"])
    bad = client.get(f"/cases/{study}/similar", params={"finding": "dragons"}, headers=_h(secrets["reader"]))
    assert bad.status_code == 422 and "unknown finding" in bad.json()["error"]
    missing = client.get("/cases/999999", headers=_h(secrets["reader"]))
    assert missing.status_code == 404 and missing.json() == {"error": "no such study in the case store"}
    for bad, field in (({"k": 0}, "k"), ({"after": "yesterday"}, "after")):
        r = client.get(f"/cases/{study}/similar", params=bad, headers=_h(secrets["reader"]))
        assert r.status_code == 422 and r.json()["error"].startswith(f"{field}: "), r.text
    short = client.get("/similar", params={"q": "a"}, headers=_h(secrets["reader"]))
    assert short.status_code == 422 and short.json()["error"].startswith("q: ")
    stats = client.get(f"/cases/{study}/finding-stats", headers=_h(secrets["reader"])).json()["findings"]
    assert stats and all(0 <= v["with"] <= v["of"] for v in stats.values())
    by_text = client.get("/similar", params={"q": "mitral regurgitation"}, headers=_h(secrets["reader"])).json()
    assert by_text["cases"] and all(c["section"] for c in by_text["cases"])


def test_the_audit_log_cannot_be_edited(client: TestClient, secrets: dict[str, str], workspace: RagConfig) -> None:
    client.get(f"/cases/{_studies(client, secrets['reader'])[0]}", headers=_h(secrets["reader"]))
    db = sqlite3.connect(workspace.db_url.removeprefix("sqlite:///"))
    try:
        for statement in ("UPDATE audit_log SET key_name = 'someone'", "DELETE FROM audit_log"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                db.execute(statement)
    finally:
        db.close()
    entries = client.get("/audit", headers=_h(secrets["boss"])).json()["entries"]
    assert entries and entries[0]["key"] == "reader"
    assert client.get("/audit", headers=_h(secrets["reader"])).status_code == 403


def test_drafts_comparisons_and_looping_previews(client: TestClient, secrets: dict[str, str]) -> None:
    study = _studies(client, secrets["reader"])[-1]
    report = client.post(f"/cases/{study}/draft", headers=_h(secrets["reader"])).json()
    assert report["study_id"] == study and report["sections"][0]["sentences"][0]["evidence"]
    comparison = client.get(f"/cases/{study}/compare", headers=_h(secrets["reader"])).json()
    assert comparison["current_study_id"] == study and comparison["status"] in ("compared", "no prior")
    clip = client.get(f"/cases/{study}", headers=_h(secrets["reader"])).json()["clips"][0]
    gif = client.get(clip["preview"], headers=_h(secrets["reader"]))
    assert gif.status_code == 200 and gif.headers["content-type"] == "image/gif" and gif.content[:6] == b"GIF89a"
    again = client.get(clip["preview"], headers=_h(secrets["reader"]))
    assert again.content == gif.content  # from the cache
    assert client.get("/clips/999999/preview.gif", headers=_h(secrets["reader"])).status_code == 404


def test_bad_uploads_are_refused_with_a_reason_and_store_nothing(
    client: TestClient, secrets: dict[str, str], workspace: RagConfig, embedded_archive: EmbeddedArchive
) -> None:
    dicom = next((embedded_archive.archive / "patients").rglob("*.dcm")).read_bytes()
    before = _studies(client, secrets["reader"])
    cases = (
        ([("files", ("notes.txt", b"just some text, not an image" * 10, "text/plain"))], 415, "not a DICOM"),
        ([("files", ("big.dcm", dicom[:128] + b"DICM" + b"\0" * (4 * 2**20), "application/dicom"))], 413, "limit"),
        ([("files", ("cut.dcm", dicom[:600], "application/dicom"))], 422, "nothing stored"),
    )
    for files, status, reason in cases:
        r = client.post("/studies", files=files, headers=_h(secrets["writer"]))
        assert r.status_code == status and reason in r.json()["error"], r.text
    empty = client.post("/studies", headers=_h(secrets["writer"]))  # no file at all
    assert empty.status_code == 422 and empty.json() == {"error": "files: Field required"}
    assert client.post(
        "/studies", files=[("files", ("x.dcm", dicom, "application/dicom"))], headers=_h(secrets["reader"])
    ).status_code == 403  # fmt: skip
    assert _studies(client, secrets["reader"]) == before
    uploads = workspace.home / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())


def test_an_uploaded_study_is_stored_under_safe_names_and_searchable(
    client: TestClient, secrets: dict[str, str], workspace: RagConfig, tmp_path: Path
) -> None:
    from rag.simulate.archive import SimulationOptions, simulate_archive

    simulate_archive(
        tmp_path / "new", patients=1, seed=97, options=SimulationOptions(height=64, width=80, mp4_probability=0.0)
    )
    study_dir = next(p for p in (tmp_path / "new" / "patients").rglob("*") if p.is_dir() and any(p.glob("*.dcm")))
    files = [
        ("files", (f"../../../{p.name}", p.read_bytes(), "application/dicom")) for p in sorted(study_dir.glob("*.dcm"))
    ]
    with TestClient(create_app(workspace, key_ttl=0.0)) as other:  # another worker, its library open
        assert other.get("/ready").status_code == 200
        r = client.post("/studies", files=files, headers=_h(secrets["uploader"]))
        assert r.status_code == 201, r.text
        study = r.json()["study_id"]
        assert study in _studies(client, secrets["reader"])
        assert not list(workspace.home.parent.glob("*.dcm")) and not list(workspace.home.glob("*.dcm"))
        similar = client.get(f"/cases/{study}/similar", headers=_h(secrets["uploader"])).json()
        assert similar["cases"]
        assert ("uploader", study, "upload") in _audit_rows(workspace)
        # the other worker reopens the library it finds changed, and serves the new study at once
        case = other.get(f"/cases/{study}", headers=_h(secrets["reader"]))
        assert case.status_code == 200, case.text
        assert other.get(f"/cases/{study}/similar", headers=_h(secrets["reader"])).json()["cases"]


def test_a_key_past_its_rate_is_told_to_wait(workspace: RagConfig, secrets: dict[str, str]) -> None:
    with TestClient(create_app(workspace, rate=0.5, burst=2)) as c:
        codes = [
            c.get("/similar", params={"q": "effusion"}, headers=_h(secrets["reader"])).status_code for _ in range(3)
        ]
        assert codes[:2] == [200, 200] and codes[2] == 429
        r = c.get("/similar", params={"q": "effusion"}, headers=_h(secrets["reader"]))
        assert r.status_code == 429 and float(r.headers["Retry-After"]) > 0
        metrics = c.get("/metrics").text
        assert f'rag_api_requests_total{{method="GET",route="/similar",status="429",pid="{os.getpid()}"}}' in metrics
