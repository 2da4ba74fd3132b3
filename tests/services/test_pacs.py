"""DICOMweb round trip against a real Orthanc (Debian ``orthanc`` + ``orthanc-dicomweb``) on 127.0.0.1:
simulated studies stored over STOW-RS, found over QIDO-RS, fetched over WADO-RS, ingested, searched."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from rag.core.config import load_config
from rag.store import open_store
from rag.store.access import create_key
from tests.conftest import KEY, EmbeddedArchive

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_pacs_study_is_found_fetched_ingested_and_searchable(
    orthanc: str, stored_study: tuple[str, str], embedded_archive: EmbeddedArchive, tmp_path: Path
) -> None:
    from rag.cli import app
    from rag.ingest.dicomweb import DicomWebError, search_studies
    from services.api.app import create_app

    uid, patient = stored_study
    found = search_studies(orthanc, patient=patient)
    assert [s.study_uid for s in found] == [uid] and found[0].instances and found[0].instances > 1
    assert search_studies(orthanc, patient="nobody") == []
    with pytest.raises(DicomWebError, match="YYYYMMDD"):
        search_studies(orthanc, date="last week")

    home = tmp_path / "ws"
    shutil.copytree(embedded_archive.config.home, home)
    env = {"RAG_HOME": str(home), "RAG_PSEUDONYM_KEY": KEY, "RAG_INGEST__SIZE": "64"}
    runner = CliRunner()
    listed = runner.invoke(app, ["pacs", "search", "--dicomweb", orthanc, "--patient", patient], env=env)
    assert listed.exit_code == 0 and uid in listed.output and "1 studies" in listed.output
    bad = runner.invoke(app, ["ingest", "--dicomweb", orthanc, "--study", "1.2.3.999"], env=env)
    assert bad.exit_code != 0 and "1.2.3.999" in bad.output and "Traceback" not in bad.output

    cfg = load_config(home=home, pseudonym_key=KEY, ingest={"frames": 16, "size": 64})
    store = open_store(cfg.db_url)
    _, secret = create_key(store, "pacs-user", ["read", "upload"])
    store.close()
    headers = {"Authorization": f"Bearer {secret}"}
    with TestClient(create_app(cfg, pacs_url=orthanc)) as client:
        listed_api = client.get("/pacs/studies", params={"patient": patient}, headers=headers).json()["studies"]
        assert [s["study_uid"] for s in listed_api] == [uid]
        r = client.post(f"/pacs/studies/{uid}", headers=headers)
        assert r.status_code == 201, r.text
        study = r.json()["study_id"]
        similar = client.get(f"/cases/{study}/similar", headers=headers).json()["cases"]
        assert similar and all(c["study_id"] != study for c in similar)
        missing = client.post("/pacs/studies/1.2.3.999", headers=headers)
        assert missing.status_code == 502 and "1.2.3.999" in missing.json()["error"]
    assert not list((home / "uploads").glob("dicomweb-*"))  # fetched files are removed after ingestion
    # the command line fetches the same way (here the study is already stored: nothing is stored twice)
    pulled = runner.invoke(app, ["ingest", "--dicomweb", orthanc, "--study", uid, "--no-progress"], env=env)
    assert pulled.exit_code == 0, pulled.output
    assert f"fetched study {uid}" in pulled.output and "skipped=0" in pulled.output and "duplicate" in pulled.output
