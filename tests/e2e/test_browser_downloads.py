"""The Second opinion page's downloads in a real browser: a DICOM film with (invented) identifiers
gets the HTML and PDF report and the DICOM SR; the PDF is a PDF without them, the SR carries them
back for the PACS, and the page shows none of them."""
from __future__ import annotations

import sys
from pathlib import Path

import pydicom
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))      # tests/: the shared DICOM helpers
from dicom_support import PHI, write_cr  # noqa: E402
from test_browser import MODEL_WAIT, _open, _upload_film, needs_model  # noqa: E402

pytestmark = pytest.mark.e2e


@needs_model
def test_a_dicom_film_offers_pdf_and_sr_downloads(page, app_url, shot, tmp_path):
    _open(page, app_url)
    _upload_film(page, write_cr(tmp_path / "film.dcm"))
    page.get_by_text("Report as PDF").first.wait_for(timeout=MODEL_WAIT)
    page.get_by_role("button", name="DICOM SR").first.wait_for(timeout=MODEL_WAIT)
    text = page.locator("[data-testid='stMain']").inner_text()
    for key, value in PHI.items():
        assert value not in text, key
    with page.expect_download() as pdf:
        page.get_by_text("Report as PDF").first.click()
    data = Path(pdf.value.path()).read_bytes()
    assert data.startswith(b"%PDF") and len(data) < 2_000_000
    with page.expect_download() as sr:
        page.get_by_role("button", name="DICOM SR").first.click()
    ds = pydicom.dcmread(sr.value.path())
    assert ds.Modality == "SR" and ds.PatientID == PHI["PatientID"]
    page.get_by_text("Download the case report").first.scroll_into_view_if_needed()
    shot(page, "09-dicom-film-downloads")
