"""`python -m pneumo dicom-node` against a real PACS (Orthanc on loopback): a CR film stored to the
node comes back to Orthanc as an SR and a Grad-CAM image in the film's own study; other SOP
classes and modalities are refused with a DICOM status; a bad film gets an SR saying it was not
read, and the node goes on; SIGTERM stops it cleanly. Nothing it logs names the patient."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

import pydicom
import pytest

from dicom_support import PHI, cr_dataset
from orthanc_support import ORTHANC_AET, Orthanc, free_port
from pneumo import config
from pneumo.service.dicom_node import CR, DOES_NOT_MATCH, NOT_SUPPORTED, OUT_OF_RESOURCES, SUCCESS, Destination
from test_cli import assert_one_line_error, needs_model, run_cli

SR_CLASS, SC_CLASS = "1.2.840.10008.5.1.4.1.1.88.34", "1.2.840.10008.5.1.4.1.1.7"
NODE_AET = "PNEUMO"


def _associate(port: int, contexts):
    from pynetdicom import AE

    ae = AE(ae_title="MODALITY")
    for c in contexts:
        ae.add_requested_context(c)
    return ae.associate("127.0.0.1", port, ae_title=NODE_AET)


def _wait_for_echo(port: int, proc, seconds: float = 180) -> None:
    from pynetdicom.sop_class import Verification

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the node exited: {proc.stderr.read()[-3000:]}")
        assoc = _associate(port, [Verification])
        if assoc.is_established:
            status = assoc.send_c_echo()
            assoc.release()
            if status and status.Status == SUCCESS:
                return
        time.sleep(0.5)
    raise AssertionError("the node did not answer a C-ECHO")


def _store(port: int, ds) -> int:
    assoc = _associate(port, [ds.SOPClassUID])
    assert assoc.is_established
    try:
        return int(assoc.send_c_store(ds).Status)
    finally:
        assoc.release()


def _wait_for(orthanc: Orthanc, study_uid: str, classes: set[str], seconds: float = 60) -> list[dict]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = orthanc.instances_in_study(study_uid)
        if classes <= {i["tags"]["SOPClassUID"] for i in found}:
            return found
        time.sleep(0.5)
    raise AssertionError(f"not in Orthanc after {seconds} s: {classes}")


def _library_probability(ds) -> float:
    """What the Predictor (LiteRT, as the node loads it) gives the same film, outside use unlabelled as on the node."""
    from pneumo.inference.predictor import Case, Predictor
    from pneumo.present.case_outputs import dataset_bytes

    predictor = Predictor.load()
    result = predictor.predict(Case.from_sources(dataset_bytes(ds), None, panel=predictor.panel), allow_outside=False)
    assert result.intended_use == "within" and result.label, result.intended_use_reason
    return result.probability


@pytest.fixture
def pacs_and_node(tmp_path):
    node_port = free_port()
    orthanc = Orthanc(tmp_path / "orthanc", NODE_AET, node_port)
    env = dict(os.environ, PNEUMO_HOME=str(tmp_path / "home"), PYTHONPATH=str(config.REPO_ROOT))
    node = subprocess.Popen(
        [sys.executable, "-m", "pneumo", "dicom-node", "--port", str(node_port), "--ae-title", NODE_AET,
         "--forward", f"{ORTHANC_AET}@127.0.0.1:{orthanc.dicom}", "--max-file-mb", "16"],
        env=env, cwd=config.REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_echo(node_port, node)
        yield orthanc, node, node_port, tmp_path / "home"
    finally:
        if node.poll() is None:
            node.kill()
            print("the node's log:", node.communicate(timeout=10)[1][-4000:])   # shown when a test fails
        orthanc.stop()


@needs_model
@pytest.mark.slow
def test_the_node_scores_a_cr_film_into_its_own_study_in_orthanc(pacs_and_node):
    import highdicom as hd
    from pydicom.uid import CTImageStorage

    orthanc, node, port, home = pacs_and_node
    ct = cr_dataset()
    ct.SOPClassUID = ct.file_meta.MediaStorageSOPClassUID = CTImageStorage
    assert _store(port, ct) == NOT_SUPPORTED                         # not a radiograph's SOP class
    mammo = cr_dataset(modality="MG")
    assert _store(port, mammo) == DOES_NOT_MATCH                     # a CR object of another modality
    dropped = _associate(port, [CR])
    assert dropped.is_established
    dropped.abort()                                                  # a sender that vanishes mid-association
    huge = cr_dataset(n=3000)                                        # 18 MB, over --max-file-mb 16
    assert _store(port, huge) == OUT_OF_RESOURCES
    broken = cr_dataset()
    broken.PixelData = broken.PixelData[:1000]                       # truncated: an SR says not read
    assert _store(port, broken) == SUCCESS
    film = cr_dataset()
    assert str(film.SOPClassUID) == CR and _store(port, film) == SUCCESS

    found = _wait_for(orthanc, film.StudyInstanceUID, {SR_CLASS, SC_CLASS})
    sr_id = next(i["id"] for i in found if i["tags"]["SOPClassUID"] == SR_CLASS)
    sc_tags = next(i["tags"] for i in found if i["tags"]["SOPClassUID"] == SC_CLASS)
    assert sc_tags["PatientID"] == PHI["PatientID"] and sc_tags["SeriesInstanceUID"] != film.SeriesInstanceUID
    sr = hd.sr.srread(io.BytesIO(orthanc.get(f"/instances/{sr_id}/file", raw=True)))
    assert sr.PatientID == PHI["PatientID"] and sr.StudyInstanceUID == film.StudyInstanceUID
    items = {i.ConceptNameCodeSequence[0].CodeMeaning: i for i in sr.ContentSequence[-1].ContentSequence[-1].ContentSequence}
    probability = float(items["Calibrated probability of pneumonia"].MeasuredValueSequence[0].NumericValue)
    assert probability == pytest.approx(_library_probability(film), abs=1e-6)   # same bundle, same runtime
    assert items["Source of Measurement"].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == film.SOPInstanceUID

    not_read = _wait_for(orthanc, broken.StudyInstanceUID, {SR_CLASS})
    assert SC_CLASS not in {i["tags"]["SOPClassUID"] for i in not_read}   # no heat map, no score
    text = pydicom.dcmread(io.BytesIO(orthanc.get(f"/instances/{not_read[0]['id']}/file", raw=True)))
    assert "Why the film was not read" in str(text.ContentSequence)

    node.send_signal(signal.SIGTERM)
    assert node.wait(timeout=60) == 0
    log = node.stderr.read()
    assert "refused: SOP class" in log and "refused: modality MG" in log and "over the limit" in log, log
    assert "case 2: PNEUMONIA" in log or "case 2: NORMAL" in log, log
    for key, value in PHI.items():
        assert value not in log, key
        for path in home.rglob("*"):
            if path.is_file():
                assert value.encode() not in path.read_bytes(), (key, path.name)


@pytest.mark.parametrize("args, words", [
    (["--port", "11112", "--forward", "PACS"], "AET@HOST:PORT"),
    (["--port", "0", "--forward", "PACS@127.0.0.1:104"], "--port"),
    (["--port", "11112", "--ae-title", "", "--forward", "PACS@127.0.0.1:104"], "AE title"),
])
def test_bad_node_arguments_exit_2_with_one_line(tmp_path, args, words):
    assert_one_line_error(run_cli("dicom-node", *args, home=tmp_path), words)


def test_forward_destination_is_checked():
    assert str(Destination.parse("PACS@10.0.0.5:104")) == "PACS@10.0.0.5:104"
    for bad in ("PACS", "PACS@host", "A-VERY-LONG-AE-TITLE-X@h:1", "P@h:70000"):
        with pytest.raises(ValueError):
            Destination.parse(bad)
