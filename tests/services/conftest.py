"""Servers the service tests share: a real Orthanc with its DICOMweb plugin on 127.0.0.1, loaded with a
simulated study over STOW-RS."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ORTHANC = Path("/usr/sbin/Orthanc")
PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Orthanc with its DICOMweb plugin, loopback only, started for these tests and stopped after."""
    if not (ORTHANC.is_file() and PLUGIN.is_file()):
        if os.environ.get("RAG_REQUIRE_PACS"):
            pytest.fail("Orthanc is not installed: .ci/run installs Debian's orthanc and orthanc-dicomweb")
        pytest.skip("no Orthanc with the DICOMweb plugin (apt-get install orthanc orthanc-dicomweb)")
    root = tmp_path_factory.mktemp("orthanc")
    port = _port()
    config = {
        "Name": "rag-test",
        "HttpPort": port,
        "DicomServerEnabled": False,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "StorageDirectory": str(root / "storage"),
        "IndexDirectory": str(root / "index"),
        "Plugins": [str(PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    (root / "orthanc.json").write_text(json.dumps(config))
    log = (root / "orthanc.log").open("w")
    proc = subprocess.Popen([str(ORTHANC), str(root / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    import httpx

    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{url}/dicom-web/studies", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                pytest.fail(f"Orthanc exited: {(root / 'orthanc.log').read_text()[-2000:]}")
            time.sleep(0.1)
        else:
            pytest.fail("Orthanc did not answer on /dicom-web/studies within 20 s")
        yield f"{url}/dicom-web"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


@pytest.fixture(scope="session")
def stored_study(orthanc: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A simulated study stored in Orthanc over STOW-RS: (Study Instance UID, patient ID)."""
    import pydicom
    from dicomweb_client.api import DICOMwebClient

    from rag.simulate.archive import SimulationOptions, simulate_archive

    root = tmp_path_factory.mktemp("pacs-archive")
    simulate_archive(root, patients=1, seed=41, options=SimulationOptions(height=64, width=80, mp4_probability=0.0))
    study_dir = next(p for p in (root / "patients").rglob("*") if p.is_dir() and any(p.glob("*.dcm")))
    datasets = [pydicom.dcmread(p) for p in sorted(study_dir.glob("*.dcm"))]
    DICOMwebClient(url=orthanc).store_instances(datasets)
    return str(datasets[0].StudyInstanceUID), str(datasets[0].PatientID)
