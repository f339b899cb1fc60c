"""The standard outputs of an explained case (DESIGN.md, `explain --out`): report.pdf, sr.dcm,
gradcam.dcm and diagnostic-report.json. The DICOM outputs of a DICOM film carry its patient and
study (so a PACS files them); nothing else ever does, and a PNG film's DICOM outputs carry none."""
from __future__ import annotations

import dataclasses
import io
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from dicom_support import PHI, cr_dataset, in_ci, write_cr, write_png
from pneumo import config
from pneumo.data.dicom_source import source_header
from pneumo.explain import attribution
from pneumo.inference.case import Case, Result
from pneumo.present.case_outputs import dataset_bytes, dicom_outputs
from pneumo.present.explanation_files import write_explanation

from test_cli import needs_model, run_cli

pytestmark = needs_model
STANDARD = {"report.html", "report.pdf", "sr.dcm", "gradcam.dcm", "diagnostic-report.json"}


def pdf_text(path: Path) -> str:
    """The PDF's words (its streams are compressed, so the bytes alone prove nothing)."""
    if shutil.which("pdftotext") is None:
        if in_ci():
            pytest.fail("CI requires pdftotext (poppler-utils, `make system-deps`)")
        pytest.skip("pdftotext (poppler-utils) not installed")
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout


def assert_no_identifier(data: bytes | str, where: str) -> None:
    text = data.decode("latin-1") if isinstance(data, bytes) else data
    for key, value in PHI.items():
        assert value not in text, f"{key} in {where}"


@pytest.fixture(scope="module")
def explained(tmp_path_factory):
    """{"dicom"|"png": (film path, out folder)}: both films explained through one Predictor."""
    from pneumo.inference.predictor import Predictor

    root = tmp_path_factory.mktemp("outputs")
    predictor = Predictor.load()
    population = predictor.population.description if predictor.population is not None else None
    done = {}
    for kind, film in (("dicom", write_cr(root / "film.dcm")), ("png", write_png(root / "film.png"))):
        labs = config.REPO_ROOT / "assets" / "example_labs_pneumonia.csv" if kind == "dicom" else None
        # the made-up PNG is no child's film (the film check says so): its age makes it a case within use
        case = Case.from_sources(image=str(film), panel=predictor.panel, labs=labs, age=3 if kind == "png" else None)
        # real Grad-CAM loads Keras (10 s+: the slow CLI test below does it); a made-up heat map here
        explanation = predictor.explain(case, shap=False, gradcam=False, allow_outside=False)
        heat = np.outer(np.hanning(case.image.pixels.shape[0]), np.hanning(case.image.pixels.shape[1]))
        explanation = dataclasses.replace(explanation, gradcam=heat.astype(np.float32),
                                          overlay=attribution.overlay(case.image.pixels, heat.astype(np.float32)))
        out = root / kind
        write_explanation(explanation, case, out, source=source_header(film), population=population)
        done[kind] = (film, out, explanation.result)
    return done


def sr_items(ds) -> dict[str, list]:
    """{concept meaning: [values]} over the SR's whole content tree."""
    found: dict[str, list] = {}

    def walk(items):
        for item in items:
            name = item.ConceptNameCodeSequence[0].CodeMeaning
            if item.ValueType == "NUM":
                value = float(item.MeasuredValueSequence[0].NumericValue)
            elif item.ValueType == "CODE":
                value = item.ConceptCodeSequence[0].CodeMeaning
            elif item.ValueType in ("TEXT", "UIDREF"):
                value = str(item.get("TextValue") or item.get("UID"))
            elif item.ValueType == "IMAGE":
                value = item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
            else:
                value = item.ValueType
            found.setdefault(name, []).append(value)
            walk(item.get("ContentSequence", []))

    walk(ds.ContentSequence)
    return found


def test_explain_writes_the_standard_outputs(explained):
    for film, out, _ in explained.values():
        assert STANDARD <= {p.name for p in out.iterdir()}
        assert "P(pneumonia)" in pdf_text(out / "report.pdf")


def test_dicom_outputs_of_a_dicom_film_file_into_its_study_with_its_patient(explained):
    film, out, _ = explained["dicom"]
    source = pydicom.dcmread(film)
    sr, sc = pydicom.dcmread(out / "sr.dcm"), pydicom.dcmread(out / "gradcam.dcm")
    for ds in (sr, sc):
        assert ds.StudyInstanceUID == source.StudyInstanceUID
        assert ds.SeriesInstanceUID != source.SeriesInstanceUID        # its own series in that study
        for key, value in PHI.items():
            assert str(ds.get(key)) == value, key
    assert sc.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage and sc.SamplesPerPixel == 3
    assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert sc.pixel_array.shape[2] == 3 and max(sc.Rows, sc.Columns) <= 1024


def test_no_other_output_carries_an_identifier(explained):
    for kind, (film, out, _) in explained.items():
        for path in out.iterdir():
            if path.suffix != ".dcm":
                assert_no_identifier(path.read_bytes(), f"{kind}/{path.name}")
        assert_no_identifier(pdf_text(out / "report.pdf"), f"{kind}/report.pdf text")


def test_dicom_outputs_of_a_png_film_are_a_new_study_without_patient(explained):
    _, out, _ = explained["png"]
    sr, sc = pydicom.dcmread(out / "sr.dcm"), pydicom.dcmread(out / "gradcam.dcm")
    assert sr.StudyInstanceUID == sc.StudyInstanceUID != explained["dicom"][1] and sr.StudyInstanceUID
    for ds in (sr, sc):
        assert_no_identifier(ds.to_json(), "png's DICOM output")
        assert not str(ds.get("PatientName") or "") and not str(ds.get("PatientID") or "")


def test_the_sr_holds_the_answer_and_reads_back_with_highdicom(explained):
    import highdicom as hd

    film, out, result = explained["dicom"]
    sr = hd.sr.srread(out / "sr.dcm")
    assert isinstance(sr, hd.sr.Comprehensive3DSR)
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    items = sr_items(sr)
    assert items["Calibrated probability of pneumonia"] == [pytest.approx(result.probability)]
    assert items["Operating threshold"] == [pytest.approx(result.threshold)]
    assert items["Contribution of the film to the probability"] == [pytest.approx(result.modality_contribution["image"])]
    assert items["Contribution of the labs to the probability"] == [pytest.approx(result.modality_contribution["labs"])]
    assert items["Assessment of pneumonia by the decision rule"] == [result.label.capitalize()]
    assert items["Intended use"] == [{"within": "Within the intended use", "outside": "Outside the intended use",
                                      "unknown": "Intended use not established"}[result.intended_use]]
    assert items["Decision rule"] == [result.decision_rule]
    assert items["Algorithm Name"][0] == result.model["name"]
    assert items["Algorithm Version"][0] == result.model["version"]
    assert result.model["weights_sha256"] in items["Algorithm Parameters"][0]
    assert items["Source of Measurement"] == [pydicom.dcmread(film).SOPInstanceUID]


def test_outside_the_intended_use_or_refused_the_sr_says_so_without_a_score(explained):
    film, _, result = explained["dicom"]
    outside = Result(**{**result.to_dict(), "label": "", "intended_use": "outside",
                        "intended_use_reason": "the DICOM header gives an age of 45 years"})
    for r, refusal in ((outside, None), (None, "image refused: not a chest film")):
        sr = dict(dicom_outputs(r, None, source_header(film), refusal=refusal, model=result.model))["sr.dcm"]
        items = sr_items(sr)
        assert items["Assessment of pneumonia by the decision rule"] == ["Undetermined"]
        assert "Calibrated probability of pneumonia" not in items and "Operating threshold" not in items
        assert (items["Intended use"] == ["Outside the intended use"]) if r else (
            items["Why the film was not read"] == [refusal])


def test_the_fhir_report_parses_as_an_r4_diagnostic_report(explained):
    from fhir.resources.R4B.diagnosticreport import DiagnosticReport

    _, out, result = explained["dicom"]
    raw = json.loads((out / "diagnostic-report.json").read_text())
    report = DiagnosticReport.model_validate(raw)
    assert report.status == "preliminary" and raw.get("subject") is None
    assert report.code.coding[0].system == "http://loinc.org" and report.code.coding[0].code == "18748-4"
    observations = {c.id: c for c in report.contained if c.get_resource_type() == "Observation"}
    assert {r.reference for r in report.result} == {f"#{i}" for i in observations}
    assert float(observations["probability"].valueQuantity.value) == pytest.approx(result.probability)
    assert observations["finding"].code.coding[0].system == "http://loinc.org"
    assert observations["finding"].valueCodeableConcept.coding[0].code == "233604007"


@pytest.mark.slow
def test_explain_cli_on_a_dicom_film_shows_and_logs_no_identifier(tmp_path):
    film = write_cr(tmp_path / "film.dcm")
    proc = run_cli("explain", "--image", film, "--out", tmp_path / "out", home=tmp_path / "home")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert STANDARD <= {Path(line).name for line in proc.stdout.split()}
    assert_no_identifier(proc.stdout + proc.stderr, "the CLI's output")
    assert "Warning" not in proc.stderr                        # no library warning reaches the user
    logs = list((tmp_path / "home").rglob("*.sqlite*")) + list((tmp_path / "home").rglob("*.db"))
    assert logs, "the case was not logged"
    for log in logs:
        with sqlite3.connect(log) as db:
            dump = "\n".join(db.iterdump())
        assert_no_identifier(dump, log.name)
    assert pydicom.dcmread(tmp_path / "out" / "sr.dcm").PatientID == PHI["PatientID"]


@pytest.mark.slow
def test_batch_outputs_writes_each_scored_rows_standard_outputs(tmp_path):
    write_cr(tmp_path / "Doe^Jane.dcm")         # a file name can name the patient: the folder must not
    write_png(tmp_path / "film.png")
    (tmp_path / "m.csv").write_text("image_path,age\nDoe^Jane.dcm,\nfilm.png,3\nmissing.png,\n")   # a made-up film: aged
    proc = run_cli("batch", tmp_path / "m.csv", "--out", tmp_path / "out.csv", "--outputs", tmp_path / "outputs",
                   "--quiet", home=tmp_path / "home")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "outputs").iterdir()) == ["row-1", "row-2"]   # row 3: an error
    for row in ("row-1", "row-2"):
        assert STANDARD <= {p.name for p in (tmp_path / "outputs" / row).iterdir()}
        for path in (tmp_path / "outputs" / row).iterdir():
            if path.suffix != ".dcm":
                assert_no_identifier(path.read_bytes(), f"{row}/{path.name}")
    assert pydicom.dcmread(tmp_path / "outputs" / "row-1" / "sr.dcm").PatientID == PHI["PatientID"]
    assert not pydicom.dcmread(tmp_path / "outputs" / "row-2" / "sr.dcm").PatientID
    assert_no_identifier(proc.stderr, "the batch's output")


def test_a_name_in_another_script_survives_in_the_dicom_outputs(explained, recwarn):
    film, _, result = explained["dicom"]
    source = source_header(film)
    source.SpecificCharacterSet, source.PatientName = "ISO_IR 100", "Müller^Jörg"
    for name, ds in dicom_outputs(result, np.zeros((80, 80, 3), np.uint8), source):
        back = pydicom.dcmread(io.BytesIO(dataset_bytes(ds)))
        assert str(back.PatientName) == "Müller^Jörg", name
    assert not [w for w in recwarn if "encode" in str(w.message)]     # no replacement characters


def test_a_film_with_no_patient_or_study_attributes_still_gets_its_dicom_outputs(explained):
    """Type 2 attributes a film leaves out are written empty: highdicom requires them."""
    _, _, result = explained["dicom"]
    film = cr_dataset()
    for keyword in (*PHI, "PatientSex", "StudyDate", "StudyTime", "ReferringPhysicianName", "PatientAge"):
        del film[keyword]
    buf = io.BytesIO()
    film.save_as(buf, enforce_file_format=True)
    for name, ds in dicom_outputs(result, np.zeros((80, 80, 3), np.uint8), source_header(buf.getvalue())):
        back = pydicom.dcmread(io.BytesIO(dataset_bytes(ds)))
        assert back.StudyInstanceUID == film.StudyInstanceUID and not back.PatientID, name
