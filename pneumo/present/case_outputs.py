"""The standard outputs of an explained case, in one place for the CLI, the app, the batch and the
DICOM node: report.html, report.pdf, diagnostic-report.json (FHIR R4), and for a case with a film
sr.dcm (DICOM SR) and gradcam.dcm (the overlay as a DICOM image). Only the two DICOM files may
carry the source film's patient and study modules, and only when the film was DICOM."""
from __future__ import annotations

import io
import json
from pathlib import Path

from pneumo.errors import PneumoError
from pneumo.inference.disclosure import shown
from pneumo.present.dicom_capture import gradcam_image, new_study_reference
from pneumo.present.dicom_header import clean_patient_study
from pneumo.present.dicom_sr import structured_report
from pneumo.present.fhir_report import diagnostic_report
from pneumo.present.pdf_report import render_case_pdf
from pneumo.present.report import render_case_report

SR_FILE, GRADCAM_FILE, PDF_FILE, HTML_FILE, FHIR_FILE = (
    "sr.dcm", "gradcam.dcm", "report.pdf", "report.html", "diagnostic-report.json")


def dicom_outputs(result, overlay, source=None, *, refusal: str | None = None, model: dict | None = None):
    """[(file name, pydicom Dataset)]: gradcam.dcm (when there is an overlay) and sr.dcm.
    source: the film's DICOM header (pneumo.data.dicom_source.source_header) or None; without it
    the outputs form a new study with no patient data. result None: a refused film (`refusal`).
    Every patient/study value is made valid for its VR first (pneumo.present.dicom_header)."""
    source, _ = clean_patient_study(source)
    out = []
    evidence = source
    if overlay is not None and (result is None or shown(result).gradcam):   # outside, unasked: no heat map
        sc = gradcam_image(overlay, source)
        out.append((GRADCAM_FILE, sc))
        evidence = source if source is not None else sc
    if evidence is None:            # a refused PNG and no overlay: the SR's new study needs an instance
        import highdicom as hd

        evidence = new_study_reference()
        evidence.SOPClassUID, evidence.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.7", hd.UID()
        evidence.SeriesInstanceUID = hd.UID()
    out.append((SR_FILE, structured_report(result, evidence, source=source, refusal=refusal, model=model)))
    return out


def dataset_bytes(ds) -> bytes:
    """A Dataset as a DICOM Part 10 file."""
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def structured_report_bytes(result, overlay, source=None) -> bytes:
    """sr.dcm alone (the app's download); for a PNG film it references the overlay's new study."""
    return dataset_bytes(dict(dicom_outputs(result, overlay, source))[SR_FILE])


def report_files(explanation, pixels=None, *, example_label: str | None = None,
                 population: str | None = None) -> dict[str, bytes]:
    """{file name: bytes} of the reports without identifiers: HTML, PDF and the FHIR JSON."""
    over = explanation.overlay
    kw = dict(example_label=example_label, population=population)
    return {HTML_FILE: render_case_report(explanation, pixels, over, **kw).encode("utf-8"),
            PDF_FILE: render_case_pdf(explanation, pixels, over, **kw),
            FHIR_FILE: (json.dumps(diagnostic_report(explanation.result), indent=2) + "\n").encode("utf-8")}


def write_case_outputs(explanation, case, out: Path, *, source=None, population: str | None = None) -> list[Path]:
    """Write the standard outputs into `out`; returns their paths. source: the film's DICOM header."""
    out.mkdir(mode=0o700, parents=True, exist_ok=True)   # a new folder: the DICOM files name the patient
    pixels = case.image.pixels if case.image is not None else None
    files = report_files(explanation, pixels, population=population)
    failed = None
    if pixels is not None:
        try:
            files.update((name, dataset_bytes(ds)) for name, ds in
                         dicom_outputs(explanation.result, explanation.overlay, source))
        except Exception as exc:   # noqa: BLE001 - its text may quote a header value: the type only
            failed = type(exc).__name__
    written = []
    for name, data in files.items():
        written.append(write_private(out / name, data))
    if failed:
        raise PneumoError(f"{SR_FILE} and {GRADCAM_FILE} could not be made from this film's DICOM header "
                          f"({failed}); the other outputs were written")
    return written


def write_private(path: Path, data: bytes) -> Path:
    """Write a file only its owner can read (0600 from the start, also when it existed)."""
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(data)
    return path
