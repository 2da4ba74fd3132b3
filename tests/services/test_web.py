"""The clinicians' page end to end in headless Chromium: sign in, upload a simulated study, see similar
cases and the draft, follow a citation, refine by example, open a study from the PACS (a real Orthanc).
Screenshots go to ``$RAG_SCREENSHOTS`` (default: the test's temporary folder) for people to look at."""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.core.config import RagConfig, load_config
from rag.store import open_store
from rag.store.access import create_key
from tests.conftest import KEY, EmbeddedArchive

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def served(embedded_archive: EmbeddedArchive, tmp_path: Path, orthanc: str) -> Iterator[tuple[str, str, RagConfig]]:
    import uvicorn

    from services.api.app import create_app

    home = tmp_path / "ws"
    shutil.copytree(embedded_archive.config.home, home)
    cfg = load_config(home=home, pseudonym_key=KEY, ingest={"frames": 16, "size": 64})
    store = open_store(cfg.db_url)
    _, secret = create_key(store, "clinician", ["read", "upload"])
    store.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    app = create_app(cfg, pacs_url=orthanc)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", secret, cfg
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_sign_in_upload_see_neighbours_and_a_draft_and_follow_a_citation(
    served: tuple[str, str, RagConfig], tmp_path: Path, stored_study: tuple[str, str]
) -> None:
    if not CHROMIUM.is_file():
        if os.environ.get("RAG_REQUIRE_BROWSER"):
            pytest.fail("Chromium is not installed: .ci/run installs Debian's chromium")
        pytest.skip("no /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    from rag.simulate.archive import SimulationOptions, simulate_archive

    base, secret, _ = served
    shots = Path(os.environ.get("RAG_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    simulate_archive(
        tmp_path / "new", patients=1, seed=97, options=SimulationOptions(height=64, width=80, mp4_probability=0.0)
    )
    study_dir = next(p for p in (tmp_path / "new" / "patients").rglob("*") if p.is_dir() and any(p.glob("*.dcm")))
    files = sorted(str(p) for p in study_dir.glob("*.dcm"))

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(base + "/")
            page.fill("#key", "rag_wrong")
            page.click("#signin")
            expect(page.locator("#login-error")).to_contain_text("unknown or revoked")
            page.fill("#key", secret)
            page.click("#signin")
            expect(page.locator("#app")).to_be_visible()
            page.screenshot(path=str(shots / "1-signed-in.png"))

            page.set_input_files("#files", files)
            page.click("#upload button[type=submit]")
            expect(page.locator("#upload-status")).to_contain_text("stored as study", timeout=120_000)
            expect(page.locator("#neighbours .card").first).to_be_visible(timeout=60_000)
            expect(page.locator("#draft p").first).to_be_visible(timeout=60_000)
            expect(page.locator("#query-clips img").first).to_have_attribute("src", re.compile("^blob:"))
            page.screenshot(path=str(shots / "2-neighbours-and-draft.png"), full_page=True)

            citation = page.locator("#draft a.evidence").first
            cited = citation.get_attribute("data-study")
            citation.click()
            expect(page.locator("#case-box")).to_be_visible()
            expect(page.locator("#case-id")).to_contain_text(str(cited))
            page.screenshot(path=str(shots / "3-cited-case.png"), full_page=True)

            page.locator("#neighbours .card .refine").first.click()  # refine by example
            expect(page.locator("#query-id")).not_to_contain_text("stored as")
            expect(page.locator("#neighbours .card").first).to_be_visible(timeout=60_000)

            # a study picked from the PACS: searched over QIDO-RS, opened (fetched, ingested) over WADO-RS
            _, patient = stored_study
            page.fill("#pacs-patient", patient)
            page.click("#pacs button[type=submit]")
            expect(page.locator("#pacs-list li button")).to_have_count(1)
            before = page.locator("#study").input_value()
            page.locator("#pacs-list li button").click()
            expect(page.locator("#study")).not_to_have_value(before, timeout=120_000)
            expect(page.locator("#neighbours .card").first).to_be_visible(timeout=60_000)
            page.screenshot(path=str(shots / "4-from-the-pacs.png"), full_page=True)
        finally:
            browser.close()
    assert len(list(shots.glob("*.png"))) == 4
    print(f"\nscreenshots in {shots}")
