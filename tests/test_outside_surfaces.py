"""One rule of what an outside-intended-use case shows (pneumo.inference.disclosure), held on every
surface with the real Predictor and the shipped model: an adult DICOM (PatientAge 045Y), an adult
PNG with no age (the learned film check flags it) and a child's film (a Kermany test film).
Outside: no label, no number and no Grad-CAM image anywhere unless asked for that case, the reason
first. The child's film reads the same everywhere: the page, the CLI's JSON, the batch CSV, the
case log, History, the HTML/PDF reports, the SR, FHIR and the DICOM node."""
from __future__ import annotations

import csv
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pneumo import config
from pneumo.inference.disclosure import shown

from test_cli import needs_model

pytestmark = [needs_model, pytest.mark.data, pytest.mark.slow]

ADULT_PNG = "adult/covid-19-image-repository/png/00d96e05.png"      # the film check: "looks like an adult's"
CHILD = "kermany/chest_xray/test/PNEUMONIA/person99_bacteria_474.jpeg"
FILMS = ("adult_dicom", "adult_png", "child")


def pdf_text(path: Path) -> str:
    assert shutil.which("pdftotext"), "pdftotext (poppler-utils) is needed"
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def films(tmp_path_factory, data_dir) -> dict[str, Path]:
    from PIL import Image

    from pneumo.qa.hostile_bytes import dicom_bytes

    root = tmp_path_factory.mktemp("films")
    child = Path(data_dir) / CHILD
    pixels = np.asarray(Image.open(child).convert("L"), np.uint16) * 16          # a child's film, 12-bit,
    adult = root / "adult.dcm"                                                     # in a header saying 45
    adult.write_bytes(dicom_bytes(*pixels.shape, modality="CR", pixels=pixels, PatientAge="045Y",
                                  ViewPosition="AP"))
    shutil.copy(Path(data_dir) / ADULT_PNG, root / "adult.png")
    shutil.copy(child, root / "child.jpeg")
    return {"adult_dicom": adult, "adult_png": root / "adult.png", "child": root / "child.jpeg"}


@pytest.fixture(scope="module")
def predictor():
    from pneumo.inference.predictor import Predictor

    return Predictor.load()


@pytest.fixture(scope="module")
def library(films, predictor):
    """The library's own answer for each film, not asked to show an outside case."""
    from pneumo.inference.case import Case

    out = {k: predictor.predict(Case.from_sources(str(p), None, panel=predictor.panel)) for k, p in films.items()}
    assert out["adult_dicom"].intended_use == out["adult_png"].intended_use == "outside"
    assert "045" not in json.dumps(out["adult_dicom"].to_dict())
    assert out["child"].intended_use == "within" and out["child"].label == "PNEUMONIA"
    return out


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PNEUMO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _log_rows(home: Path) -> list[dict]:
    with sqlite3.connect(home / "cases.sqlite") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM cases ORDER BY id")]


# --- the rule itself -------------------------------------------------------------------------

def test_the_rule_on_the_library_answers(library):
    for kind in ("adult_dicom", "adult_png"):
        r = library[kind]
        assert r.label == "" and not r.outside_allowed
        s = shown(r)
        assert (s.label, s.probability, s.verdict_colour, s.gradcam) == (None, None, False, False)
        assert s.lead_reason == r.intended_use_reason
        asked = shown(r, True)       # asked for this case: the number and the rule's label, never a verdict
        assert asked.probability == r.probability and asked.label == r.suggested_label
        assert not asked.verdict_colour and asked.gradcam and asked.asked
    c = shown(library["child"])
    assert (c.label, c.probability, c.verdict_colour, c.lead_reason, c.gradcam) == \
        ("PNEUMONIA", library["child"].probability, True, None, True)


# --- the command line: predict (JSON and words) and explain --out ------------------------------

def test_predict_json_and_words(films, library, home, capsys):
    from pneumo.cli.predict import predict

    for kind, film in films.items():
        assert predict(["--image", str(film), "--json"]) == 0
        got = json.loads(capsys.readouterr().out)
        r = library[kind]
        assert got["probability"] == pytest.approx(r.probability, abs=1e-6)
        assert got["label"] == ("PNEUMONIA" if kind == "child" else "")
        assert got["outside_allowed"] is False
        assert predict(["--image", str(film)]) == 0
        words = capsys.readouterr().out
        if kind == "child":
            assert words.startswith(f"PNEUMONIA · P(pneumonia) {r.probability:.2f}")
        else:
            assert words.startswith("No second opinion") and f"{r.probability:.2f}" not in words
            said = [line for line in words.splitlines() if not line.strip().startswith("rule:")]
            assert not any("PNEUMONIA" in line or "NORMAL" in line for line in said), words
            assert predict(["--image", str(film), "--allow-outside", "--json"]) == 0
            asked = json.loads(capsys.readouterr().out)
            assert asked["label"] == r.suggested_label and asked["outside_allowed"] is True
    rows = _log_rows(home)
    assert [(row["label"], row["outside_allowed"]) for row in rows] == [
        ("", 0), ("", 0), (library["adult_dicom"].suggested_label, 1),
        ("", 0), ("", 0), (library["adult_png"].suggested_label, 1),
        ("PNEUMONIA", 0), ("PNEUMONIA", 0)]


def _report_checks(out: Path, r, kind: str, asked: bool = False) -> None:
    """report.html/.pdf, sr.dcm and diagnostic-report.json of one explained film."""
    import highdicom as hd

    html = (out / "report.html").read_text()
    pdf = pdf_text(out / "report.pdf")
    sr = hd.sr.srread(out / "sr.dcm")
    fhir = json.loads((out / "diagnostic-report.json").read_text())
    sr_json = json.dumps(sr.to_json_dict())
    assert "233604007" not in json.dumps([i.to_json_dict() for i in sr.ContentSequence[:3]])
    observations = {o["id"]: o for o in fhir["contained"] if o["resourceType"] == "Observation"}
    if kind == "child":
        line = f"PNEUMONIA · P(pneumonia) {r.probability:.2f}"
        assert line in html and line in pdf and f"P(pneumonia) = {r.probability:.3f}" in pdf
        assert "Assessment of pneumonia by the decision rule" in sr_json and "Pneumonia" in sr_json
        assert float(observations["probability"]["valueQuantity"]["value"]) == pytest.approx(r.probability)
        assert fhir["conclusionCode"][0]["coding"][0]["code"] == "233604007"
        assert (out / "gradcam.dcm").is_file()
        return
    # outside: the report opens with the reason, before any number
    body = html[html.index("<body>"):]
    assert body.index("No second opinion") < body.index("<h2>Result</h2>")
    first = pdf.index("No second opinion")
    assert first < pdf.index("Research and decision support only")
    assert fhir["conclusionCode"][0]["coding"][0]["code"] == "373068000"      # undetermined
    for label in ("PNEUMONIA", "NORMAL"):      # the label word only inside the rule's own sentence
        assert f"{label} ·" not in html + pdf + sr_json and f"result {label}" not in html
        assert body.count(label) == body.count(f"{label} when") and sr_json.count(label) == sr_json.count(f"{label} when")
    if asked:
        number = f"P(pneumonia) {r.probability:.2f}"
        assert number in html and first < pdf.index(number)
        assert float(observations["probability"]["valueQuantity"]["value"]) == pytest.approx(r.probability)
        assert (out / "gradcam.dcm").is_file()
    else:
        assert f"{r.probability:.2f}" not in html.replace(r.image_digest or "-", "")
        assert "P(pneumonia) =" not in pdf and "probability" not in observations
        assert "Calibrated probability of pneumonia" not in sr_json
        assert not (out / "gradcam.dcm").exists() and not (out / "overlay.png").exists()


def test_explain_out_writes_no_heat_map_or_number_outside(films, library, home, tmp_path, capsys):
    from pneumo.cli.predict import explain

    for kind, film in films.items():
        out = tmp_path / kind
        assert explain(["--image", str(film), "--out", str(out)]) == 0
        printed = capsys.readouterr().out
        assert "P(pneumonia)" not in printed
        _report_checks(out, library[kind], kind)
    out = tmp_path / "asked"
    assert explain(["--image", str(films["adult_png"]), "--out", str(out), "--allow-outside"]) == 0
    _report_checks(out, library["adult_png"], "adult_png", asked=True)


# --- the batch: CSV, the case log, History, --outputs ----------------------------------------

def test_batch_csv_case_log_history_and_outputs(films, library, home, tmp_path):
    from pneumo.cli.batch import main as batch
    from pneumo.present.app_support import history_frame
    from pneumo.service.case_log import CaseLog

    manifest = tmp_path / "m.csv"
    manifest.write_text("image_path\n" + "\n".join(str(films[k]) for k in FILMS) + "\n")
    assert batch([str(manifest), "--out", str(tmp_path / "o.csv"), "--root", "/", "--quiet",
                  "--outputs", str(tmp_path / "rows")]) == 0
    with open(tmp_path / "o.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row, kind in zip(rows, FILMS):
        r = library[kind]
        assert row["error"] == "" and float(row["probability"]) == pytest.approx(r.probability, abs=1e-6)
        assert row["label"] == ("PNEUMONIA" if kind == "child" else "")
        _report_checks(tmp_path / "rows" / f"row-{row['row']}", r, kind)
    logged = _log_rows(home)
    assert [r["label"] for r in logged] == ["", "", "PNEUMONIA"] and [r["outside_allowed"] for r in logged] == [0, 0, 0]
    assert logged[2]["probability"] == pytest.approx(library["child"].probability)
    history = history_frame(CaseLog().recent())[::-1].reset_index(drop=True)      # oldest first
    assert history["Label"].tolist() == ["—", "—", "PNEUMONIA"]
    assert history["P(pneumonia)"].isna().tolist() == [True, True, False]
    assert history["P(pneumonia)"].iloc[2] == pytest.approx(library["child"].probability, abs=5e-4)
    # asked for the whole batch: the labels, the request recorded with each outside case
    assert batch([str(manifest), "--out", str(tmp_path / "o2.csv"), "--root", "/", "--quiet",
                  "--allow-outside"]) == 0
    with open(tmp_path / "o2.csv", newline="") as fh:
        labels = [row["label"] for row in csv.DictReader(fh)]
    assert labels == [library[k].suggested_label for k in FILMS]
    assert [r["outside_allowed"] for r in _log_rows(home)[3:]] == [1, 1, 0]
    history = history_frame(CaseLog().recent(3))
    assert history["Label"].tolist()[::-1] == ["—", "—", "PNEUMONIA"]       # never a label word outside
    assert not history["P(pneumonia)"].isna().any()


# --- the DICOM node: an SR saying why, no Grad-CAM image -------------------------------------

def _sr_json(ds) -> str:
    """The SR as sent (Part 10 bytes), read back as DICOM JSON text."""
    import io

    import pydicom

    from pneumo.present.case_outputs import dataset_bytes
    return json.dumps(json.loads(pydicom.dcmread(io.BytesIO(dataset_bytes(ds))).to_json()), ensure_ascii=False)


def test_the_dicom_node_sends_an_sr_saying_why_and_no_heat_map(films, library, predictor, home, tmp_path):
    from pneumo.present.case_outputs import dicom_outputs
    from pneumo.service.dicom_node import DicomNode, Destination

    node = DicomNode(predictor, ae_title="PNEUMO", port=0, forward=Destination.parse("PACS@127.0.0.1:11112"),
                     make_outputs=dicom_outputs)
    node._send = lambda outputs: "kept here"
    child_dicom = tmp_path / "child.dcm"
    from PIL import Image

    from pneumo.qa.hostile_bytes import dicom_bytes
    pixels = np.asarray(Image.open(films["child"]).convert("L"), np.uint16) * 16
    child_dicom.write_bytes(dicom_bytes(*pixels.shape, modality="CR", pixels=pixels, PatientAge="003Y",
                                        ViewPosition="AP"))
    adult = dict(node.process(films["adult_dicom"].read_bytes()))
    child = dict(node.process(child_dicom.read_bytes()))
    assert set(adult) == {"sr.dcm"} and set(child) == {"sr.dcm", "gradcam.dcm"}
    text = _sr_json(adult["sr.dcm"])
    assert "No second opinion" in text and "DICOM header" in text
    assert "Calibrated probability of pneumonia" not in text and "PNEUMONIA ·" not in text
    from pneumo.inference.case import Case
    r = predictor.predict(Case.from_sources(child_dicom.read_bytes(), None, panel=predictor.panel))
    assert r.label == "PNEUMONIA" and f"PNEUMONIA · P(pneumonia) {r.probability:.2f}" in _sr_json(child["sr.dcm"])
    assert [(r["label"], r["outside_allowed"], r["origin"]) for r in _log_rows(home)] == \
        [("", 0, "dicom-node"), ("PNEUMONIA", 0, "dicom-node")]          # the node's own origin (schema 5)


# --- the page (streamlit AppTest) --------------------------------------------------------------

def _texts(at, kind) -> str:
    return " | ".join(str(e.value) for e in getattr(at, kind))


def _main_text(at) -> str:
    """The page's own words: not the style sheet, nor the sidebar's statement of the rule."""
    return " | ".join(str(e.value) for e in at.markdown
                      if not any(k in str(e.value) for k in ("<style>", "pneumo-meta", "pneumo-disclaimer")))


def test_the_page_shows_the_same_and_asks_per_case(films, library, home):
    from streamlit.testing.v1 import AppTest

    from pages.ui import model as common
    from pneumo.service.case_log import CaseLog

    common._loader.clear()
    at = AppTest.from_file(str(config.REPO_ROOT / "app.py"), default_timeout=240)
    at.run()
    at.checkbox(key="age_unknown").check()             # no age for these films: the page asks first
    at.file_uploader[0].upload("child.jpeg", films["child"].read_bytes(), "image/jpeg").run()
    assert not at.exception, at.exception
    md = _texts(at, "markdown")
    r = library["child"]
    assert "pneumo-result PNEUMONIA'>PNEUMONIA<" in md and f"<b>{r.probability:.2f}</b>" in md
    for kind, mime in (("adult_dicom", "application/dicom"), ("adult_png", "image/png")):
        at.file_uploader[0].upload(films[kind].name, films[kind].read_bytes(), mime).run()
        assert not at.exception, at.exception
        r = library[kind]
        assert "No second opinion" in _texts(at, "error")
        md = _texts(at, "markdown")
        md = _main_text(at)
        assert "P(pneumonia)" not in md and "PNEUMONIA" not in md and "NORMAL" not in md, (kind, md[-600:])
        toggle = next(t for t in at.toggle if t.key.startswith("show_outside"))
        assert toggle.value is False                      # a new case: not asked, whatever the last one was
        toggle.set_value(True).run()
        assert not at.exception, at.exception
        md = _main_text(at)
        assert f"P(pneumonia) {r.probability:.2f}" in md and "not validated for this case" in md
        assert "pneumo-result PNEUMONIA" not in md and "pneumo-result NORMAL" not in md
        assert all("PNEUMONIA" not in m.label and "NORMAL" not in m.label for m in at.metric)
    rows = _log_rows(home)
    assert [(row["label"], row["outside_allowed"]) for row in rows] == [
        ("PNEUMONIA", 0), (library["adult_dicom"].suggested_label, 1), (library["adult_png"].suggested_label, 1)]
    assert CaseLog().count() == 3
