"""Issue 28: the DICOM node under attack, over DICOM (pynetdicom) against a running node.

- a deflate bomb (Deflated Explicit VR LE, a few hundred KB inflating to 256 MB) is refused, both
  when proposed honestly and when its bytes are sent under an Explicit VR context, and the node's
  peak RSS grows by far less than the bomb (the 2 GB bomb's figure: docs/benchmarks.md);
- beyond loopback the node does not start without --accept-from AET@ADDRESS; with it, another
  address or another AE title is refused;
- idle TCP connections do not hold the node's slots: another peer is answered at once, the same
  peer within the association-request timeout;
- a free-text Modality is never echoed in the log;
- a film whose PatientSex holds a name still gets its SR and Grad-CAM, and a case-log row;
- with the PACS down the outputs wait in a retry queue (0600 files in a 0700 folder) and reach
  the PACS when it is back."""
from __future__ import annotations

import os
import signal
import socket
import sqlite3
import stat
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from dicom_support import PHI, cr_dataset
from orthanc_support import ORTHANC_AET, Orthanc, free_port, orthanc_binary
from pneumo import config
from pneumo.service.dicom_node import CANNOT_UNDERSTAND, DOES_NOT_MATCH, SUCCESS, Limits, Peer, check_exposure
from test_cli import needs_model
from test_dicom_node import NODE_AET, SC_CLASS, SR_CLASS, _wait_for

DEFLATED = "1.2.840.10008.1.2.1.99"
SECRET = "Doe^Secretive MRN-778899"


# ---- a deflate bomb, streamed (the 2 GB one never exists uncompressed) ------------------------

def deflate_bomb(path: Path, inflated_bytes: int, syntax: str = DEFLATED) -> Path:
    """A CR film (512x512 declared) whose deflated dataset inflates to `inflated_bytes` of pixel
    data. syntax: the transfer syntax its file meta claims (another one: a lying sender)."""
    from pydicom.filewriter import write_dataset, write_file_meta_info
    from pydicom.filebase import DicomBytesIO

    ds = cr_dataset()
    del ds.PixelData
    meta = ds.file_meta
    meta.TransferSyntaxUID = syntax
    head = DicomBytesIO()
    head.is_little_endian, head.is_implicit_VR = True, False
    write_dataset(head, ds)
    length = inflated_bytes - inflated_bytes % 2
    pixel_header = struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, length)
    with open(path, "wb") as fh:
        fh.write(b"\0" * 128 + b"DICM")
        fmeta = DicomBytesIO()
        fmeta.is_little_endian, fmeta.is_implicit_VR = True, False
        write_file_meta_info(fmeta, meta, enforce_standard=True)
        fh.write(fmeta.getvalue())
        z = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        fh.write(z.compress(head.getvalue() + pixel_header))
        chunk = bytes(16 << 20)
        left = length
        while left:
            n = min(left, len(chunk))
            fh.write(z.compress(chunk[:n]))
            left -= n
        fh.write(z.flush())
    return path


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


def reset_peak(pid: int) -> int:
    """Reset the process's peak RSS (VmHWM) to its RSS now; returns that RSS in KiB."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return _status_kb(pid, "VmRSS")


# ---- the node ----------------------------------------------------------------------------

class Node:
    def __init__(self, home: Path, forward_port: int, *args: str, port: int | None = None):
        self.port, self.home = port or free_port(), home
        env = dict(os.environ, PNEUMO_HOME=str(home), PYTHONPATH=str(config.REPO_ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pneumo", "dicom-node", "--port", str(self.port), "--ae-title", NODE_AET,
             "--forward", f"{ORTHANC_AET}@127.0.0.1:{forward_port}", "--max-file-mb", "16", *args],
            env=env, cwd=config.REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.log = ""

    def associate(self, contexts, calling: str = "MODALITY", source: str = "127.0.0.1"):
        from pynetdicom import AE

        ae = AE(ae_title=calling)
        ae.acse_timeout = 5
        for context in contexts:
            if isinstance(context, tuple):
                ae.add_requested_context(*context)
            else:
                ae.add_requested_context(context)
        return ae.associate("127.0.0.1", self.port, ae_title=NODE_AET, bind_address=(source, 0))

    def echo(self, calling: str = "MODALITY", source: str = "127.0.0.1") -> bool:
        from pynetdicom.sop_class import Verification

        assoc = self.associate([Verification], calling, source)
        if not assoc.is_established:
            return False
        try:
            status = assoc.send_c_echo()
            return bool(status) and status.Status == SUCCESS
        finally:
            assoc.release()

    def wait_ready(self, seconds: float = 180, **kw) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the node exited: {self.proc.stderr.read()[-3000:]}")
            if self.echo(**kw):
                return
            time.sleep(0.5)
        raise AssertionError("the node did not answer a C-ECHO")

    def store(self, ds_or_path, *, syntax=None, **kw) -> int | None:
        sop = cr_dataset().SOPClassUID if syntax else ds_or_path.SOPClassUID
        assoc = self.associate([(sop, [syntax])] if syntax else [sop], **kw)
        assert assoc.is_established
        try:
            status = assoc.send_c_store(ds_or_path)
            return int(status.Status) if status else None
        finally:
            assoc.release()

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log = self.proc.communicate(timeout=10)[1]
        return self.log


@pytest.fixture
def node_factory(tmp_path):
    started = []

    def start(*args, forward_port=None, home=None, ready_kw=None):
        node = Node(home or tmp_path / "home", forward_port or free_port(), *args)
        started.append(node)
        node.wait_ready(**(ready_kw or {}))
        return node

    yield start
    for node in started:
        if node.proc.poll() is None:
            print("the node's log:", node.stop()[-4000:])


# ---- 1: deflate bomb -----------------------------------------------------------------------

@needs_model
def test_a_deflate_bomb_is_refused_and_the_node_stays_small(tmp_path, node_factory):
    from pydicom.uid import ExplicitVRLittleEndian
    from pynetdicom import _config

    node = node_factory()
    bomb = deflate_bomb(tmp_path / "bomb.dcm", 256 << 20)
    liar = deflate_bomb(tmp_path / "liar.dcm", 256 << 20, syntax=ExplicitVRLittleEndian)
    assert bomb.stat().st_size < 1 << 20
    before = reset_peak(node.proc.pid)

    honest = node.associate([(cr_dataset().SOPClassUID, [DEFLATED])])   # the only syntax it offers
    if honest.is_established:                        # (pynetdicom aborts when no context was accepted)
        try:
            assert not [c for c in honest.accepted_contexts if c.transfer_syntax[0] == DEFLATED], \
                "the node accepted a deflated transfer syntax"
        finally:
            honest.release()

    _config.STORE_SEND_CHUNKED_DATASET = True            # the file's bytes as they are: a lying sender
    try:
        status = node.store(str(liar), syntax=ExplicitVRLittleEndian)
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = False
    assert status in (CANNOT_UNDERSTAND, DOES_NOT_MATCH), status   # garbage as Explicit VR: refused, never inflated
    grown_mib = (_status_kb(node.proc.pid, "VmHWM") - before) / 1024
    assert grown_mib < 100, f"the node grew by {grown_mib:.0f} MiB on a 256 MB bomb"
    assert node.echo()
    log = node.stop()
    assert "refused" in log and "stopped after 0 cases" in log, log


# ---- 4: an open write path ---------------------------------------------------------------

@pytest.mark.parametrize("accept", [[], ["--accept-from", "MODALITY"]])
def test_beyond_loopback_the_node_needs_accept_from_with_addresses(tmp_path, accept):
    env = dict(os.environ, PNEUMO_HOME=str(tmp_path), PYTHONPATH=str(config.REPO_ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "pneumo", "dicom-node", "--port", str(free_port()), "--host", "0.0.0.0",
         "--forward", "PACS@127.0.0.1:104", *accept],
        env=env, cwd=config.REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--accept-from" in lines[0] and "Traceback" not in proc.stderr


def test_accept_from_entries_are_checked():
    assert Peer.parse("CT1@10.20.0.0/16").admits("CT1", "10.20.3.4")
    assert not Peer.parse("CT1@10.20.0.0/16").admits("CT1", "10.21.3.4")
    assert not Peer.parse("CT1@10.20.0.7").admits("CT2", "10.20.0.7")
    check_exposure("127.0.0.1", ())
    check_exposure("0.0.0.0", (Peer.parse("CT1@10.20.0.7"),))
    for bad in ("CT1@not-an-address", "@10.0.0.1", "A-VERY-LONG-AE-TITLE-X@10.0.0.1"):
        with pytest.raises(ValueError):
            Peer.parse(bad)


@needs_model
def test_accept_from_refuses_other_addresses_and_titles(node_factory):
    node = node_factory("--accept-from", "MODALITY@127.0.0.2", ready_kw={"source": "127.0.0.2"})
    assert node.echo(source="127.0.0.2")
    assert not node.echo(source="127.0.0.1")                     # the right title, another address
    assert not node.echo(calling="INTRUDER", source="127.0.0.2")  # the right address, another title
    log = node.stop()
    assert "not in --accept-from" in log


# ---- 8: idle connections -----------------------------------------------------------------

@needs_model
def test_idle_connections_do_not_hold_the_nodes_slots(node_factory):
    node = node_factory()
    idle = [socket.create_connection(("127.0.0.1", node.port)) for _ in range(6)]   # send nothing
    try:
        time.sleep(0.5)
        # the bound is the node's own request timeout: an answer that had to wait for the idle ones to
        # be dropped would take at least that long, whatever the machine
        wait = Limits().request_seconds
        started = time.monotonic()
        assert node.echo(source="127.0.0.2"), "another peer was not answered while one peer idles"
        assert time.monotonic() - started < wait
        deadline = time.monotonic() + 2 * wait          # the request timeout frees the idle ones
        while not node.echo() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert time.monotonic() < deadline, "the idle connections still held the slots after twice the timeout"
    finally:
        for s in idle:
            s.close()


# ---- low: free-text modality; item 3 on the node; the retry queue ---------------------------

@needs_model
@pytest.mark.slow
def test_pacs_down_outputs_wait_then_arrive_and_odd_headers_still_get_outputs(tmp_path, node_factory):
    node_port = free_port()
    orthanc = Orthanc(tmp_path / "orthanc", NODE_AET, node_port)
    pacs_port = orthanc.dicom
    orthanc.stop()                                    # the PACS is down
    home = tmp_path / "home"
    node = Node(home, pacs_port, "--retry-seconds", "2", port=node_port)
    try:
        node.wait_ready()
        assert node.store(cr_dataset(modality="DOEJ")) == DOES_NOT_MATCH      # free text, not echoed
        film = cr_dataset()
        film.PatientSex = SECRET                                            # highdicom refuses it
        assert node.store(film) == SUCCESS
        outbox = home / "node-outbox"
        deadline = time.monotonic() + 120
        while len(list(outbox.glob("*.dcm"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        files = list(outbox.glob("*.dcm"))
        assert len(files) == 2, "the SR and Grad-CAM were not kept for a retry"
        assert stat.S_IMODE(outbox.stat().st_mode) == 0o700
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
        assert all(PHI["PatientID"] not in f.name for f in files)

        orthanc.proc = subprocess.Popen([orthanc_binary(), str(orthanc.folder / "orthanc.json")],
                                        stdout=open(orthanc.folder / "orthanc2.log", "wb"), stderr=subprocess.STDOUT)
        orthanc.log = open(orthanc.folder / "orthanc3.log", "wb")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                orthanc.get("/system")
                break
            except OSError:
                time.sleep(0.3)
        found = _wait_for(orthanc, film.StudyInstanceUID, {SR_CLASS, SC_CLASS}, seconds=60)
        sr_tags = next(i["tags"] for i in found if i["tags"]["SOPClassUID"] == SR_CLASS)
        assert sr_tags["PatientID"] == PHI["PatientID"] and not sr_tags.get("PatientSex")
        deadline = time.monotonic() + 10
        while list(outbox.glob("*.dcm")) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert not list(outbox.glob("*.dcm"))
        log = node.stop()
        with sqlite3.connect(home / "cases.sqlite") as conn:
            assert conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0] == 1
    finally:
        if node.proc.poll() is None:
            node.stop()
        orthanc.stop()
    assert "DOEJ" not in log and "refused: modality unrecognised" in log, log
    assert "retry queue" in log and "case failed" not in log, log
    assert "Secretive" not in log and "778899" not in log
    for value in PHI.values():
        assert value not in log
