"""The Second opinion page offers the PDF and the DICOM SR next to the HTML report, and a DICOM
film's identifiers reach none of the page's text (only the SR download may carry them)."""
from __future__ import annotations

import io

import pydicom

from dicom_support import PHI, cr_dataset
from test_app import _app, _texts, fake_predictor, home  # noqa: F401  (fixtures)


def _dicom_bytes() -> bytes:
    buf = io.BytesIO()
    cr_dataset().save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_downloads_offer_pdf_and_sr_and_the_page_shows_no_identifier(fake_predictor, home):
    at = _app()
    at.file_uploader[0].upload("film.dcm", _dicom_bytes(), "application/dicom")
    at.run()
    assert not at.exception, at.exception
    buttons = at.get("download_button")
    labels = [b.proto.label for b in buttons]
    assert any("HTML" in t for t in labels) and any("PDF" in t for t in labels), labels
    assert any("DICOM SR" in t for t in labels), labels
    sr = next(b for b in buttons if "DICOM SR" in b.proto.label)     # it says it carries identifiers, for the PACS
    assert "patient identifiers" in sr.proto.label and "identifiers" in sr.proto.help and "PACS" in sr.proto.help
    shown = " ".join(_texts(at, kind) for kind in ("title", "markdown", "caption", "warning", "error",
                                                     "info", "success", "metric", "text"))
    shown += " ".join(labels) + " ".join(str(b.proto.help) for b in buttons)
    for key, value in PHI.items():
        assert value not in shown, key


def test_the_sr_download_of_a_dicom_film_files_into_its_study():
    """What the page's SR button makes (its callable), for a DICOM upload."""
    from pneumo.data.dicom_source import source_header
    from pneumo.inference.case import Result
    from pneumo.present.case_outputs import structured_report_bytes

    data = _dicom_bytes()
    result = Result(probability=0.7, label="PNEUMONIA", threshold=0.5, band="clear",
                    modalities={"image": True, "labs": False}, modality_contribution={"image": 0.2, "labs": 0.0},
                    model={"name": "m", "version": "1", "weights_sha256": "0" * 64}, intended_use="within",
                    intended_use_reason="age 3", baseline=0.5)
    sr = pydicom.dcmread(io.BytesIO(structured_report_bytes(result, None, source_header(data))))
    film = pydicom.dcmread(io.BytesIO(data))
    assert sr.StudyInstanceUID == film.StudyInstanceUID and sr.PatientID == PHI["PatientID"]
