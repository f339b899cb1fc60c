"""A real PACS for the tests: Debian's Orthanc, started on loopback with a config written into a
tmp folder (free ports, storage there, HTTP for localhost only, DICOM store only from the one
modality it knows: pneumo's node on 127.0.0.1), stopped at the end."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from dicom_support import in_ci

ORTHANC_AET = "ORTHANC"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def orthanc_binary() -> str:
    """The Orthanc executable; missing: a failure in CI (`make system-deps` installs it), else a skip."""
    found = shutil.which("Orthanc") or (Path("/usr/sbin/Orthanc").is_file() and "/usr/sbin/Orthanc")
    if not found:
        if in_ci():
            pytest.fail("CI requires Orthanc (apt-get install orthanc; `make system-deps` does it)")
        pytest.skip("Orthanc not installed (apt-get install orthanc, or `make system-deps`)")
    return found


class Orthanc:
    def __init__(self, folder: Path, node_aet: str, node_port: int):
        self.folder, self.http, self.dicom = folder, free_port(), free_port()
        config = {
            "Name": "pneumo-test", "StorageDirectory": str(folder / "storage"),
            "IndexDirectory": str(folder / "index"), "HttpPort": self.http, "DicomPort": self.dicom,
            "DicomAet": ORTHANC_AET, "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
            "DicomModalities": {"pneumo": [node_aet, "127.0.0.1", node_port]},
            "DicomAlwaysAllowStore": False, "DicomAlwaysAllowEcho": False, "DicomCheckModalityHost": True,
            "DicomCheckCalledAet": True, "Plugins": [], "SaveJobs": False, "StorageCompression": False,
        }
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "orthanc.json").write_text(json.dumps(config, indent=2))
        self.log = open(folder / "orthanc.log", "wb")
        self.proc = subprocess.Popen([orthanc_binary(), str(folder / "orthanc.json")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("Orthanc exited: " + (folder / "orthanc.log").read_text()[-2000:])
            try:
                self.get("/system")
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("Orthanc's REST API did not answer within 30 s")

    def get(self, path: str, raw: bool = False):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}{path}", timeout=10) as r:
            body = r.read()
        return body if raw else json.loads(body)

    def instances_in_study(self, study_uid: str) -> list[dict]:
        """[{'id', 'tags'}] of every instance Orthanc holds in the study with that StudyInstanceUID."""
        out = []
        for sid in self.get("/studies"):
            if self.get(f"/studies/{sid}")["MainDicomTags"].get("StudyInstanceUID") == study_uid:
                for inst in self.get(f"/studies/{sid}/instances"):
                    out.append({"id": inst["ID"], "tags": self.get(f"/instances/{inst['ID']}/tags?simplify")})
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()
