"""A film's patient/study values that highdicom would refuse (issue 28 item 3): PatientSex 'U',
'MALE', 'm', 'X' or a name, a birth date '1950-01-01', an age that is not AS, a 40-character
accession number. The DICOM outputs are still made (the values blanked, the sex mapped), nothing
quotes a value (no warning, no error line), `explain --out` writes sr.dcm and gradcam.dcm 0600,
`batch --outputs` keeps going, and the CLI's internal-error line never prints an exception's text."""
from __future__ import annotations

import io
import stat
import sys
import warnings

import numpy as np
import pydicom
import pytest

from dicom_support import cr_dataset
from pneumo.data.dicom_source import source_header
from pneumo.present.case_outputs import dataset_bytes, dicom_outputs
from pneumo.present.dicom_header import clean_patient_study
from test_cli import needs_model, run_cli

SECRET = "Doe^Secretive MRN-778899"
OVERLAY = np.zeros((64, 64, 3), np.uint8)


def _header(**values):
    ds = cr_dataset()
    for key, value in values.items():
        setattr(ds, key, value)
    return source_header(dataset_bytes(ds))


@pytest.mark.parametrize("given, kept", [("U", ""), ("MALE", "M"), ("m", "M"), ("X", ""), (SECRET, ""),
                                         ("female", "F"), ("O", "O"), ("F", "F")])
def test_any_patient_sex_makes_both_outputs(given, kept):
    source = _header(PatientSex=given)
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # a pydicom warning would quote the value
        outputs = dict(dicom_outputs(None, OVERLAY, source, refusal="x"))
        for name, ds in outputs.items():
            back = pydicom.dcmread(io.BytesIO(dataset_bytes(ds)))
            assert back.PatientSex == kept and "PatientSex" in back, name
            assert SECRET.encode() not in dataset_bytes(ds)
    assert set(outputs) == {"sr.dcm", "gradcam.dcm"}


@pytest.mark.parametrize("key, value", [
    ("PatientBirthDate", "1950-01-01"), ("PatientBirthDate", "19501332"), ("PatientBirthDate", SECRET),
    ("StudyDate", "2020/01/01"), ("StudyTime", "25:00"), ("StudyTime", SECRET),
    ("PatientAge", SECRET), ("PatientAge", "45"), ("AccessionNumber", "X" * 40 + "SECRETX"),
    ("StudyID", SECRET), ("PatientName", "Doe^Secretive\\MRN-778899")])
def test_values_invalid_for_their_vr_are_blanked_without_quoting_them(key, value, caplog):
    source = _header(**{key: value})
    caplog.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        outputs = dicom_outputs(None, OVERLAY, source, refusal="x")
        files = [dataset_bytes(ds) for _, ds in outputs]
    for data in files:
        back = pydicom.dcmread(io.BytesIO(data))
        assert not str(back.get(key) or ""), key          # blanked (Type 2) or removed
        assert back.PatientID == "PHI-4711-MRN"             # the valid ones are still copied
        for part in ("Secretive", "778899", "SECRETX", "1950-01-01"):
            assert part.encode() not in data
    assert "1 patient/study value" in caplog.text
    assert "Secretive" not in caplog.text and "SECRETX" not in caplog.text


def test_the_source_header_is_not_changed_and_valid_headers_pass_untouched():
    source = _header(PatientSex="MALE")
    cleaned, changed = clean_patient_study(source)
    assert changed == 1 and cleaned.PatientSex == "M" and source.PatientSex == "MALE"
    assert clean_patient_study(_header())[1] == 0 and clean_patient_study(None) == (None, 0)


def test_the_internal_error_line_never_prints_the_exception_text(monkeypatch, capsys):
    from pneumo.cli import main as cli_main

    def boom(argv):
        raise ValueError(f"{SECRET!r} is not a valid PatientSex")

    monkeypatch.setattr(cli_main, "_command", lambda name: boom)
    monkeypatch.delenv("PNEUMO_DEBUG", raising=False)
    assert cli_main.main(["explain"]) == 1
    err = capsys.readouterr().err
    assert "ValueError" in err and "Secretive" not in err and len(err.strip().splitlines()) == 1


def test_a_failing_row_output_is_that_rows_count_and_the_batch_goes_on():
    from pneumo.service.batch import BatchSummary, _Item, _run_on_case

    summary = BatchSummary.__new__(BatchSummary)
    summary.outputs_failed, summary.outputs_error = 0, ""

    def on_case(*_):
        raise ValueError(f"{SECRET!r} is not a valid PatientSex")

    item = _Item.__new__(_Item)
    item.index, item.case, item.result, item.path = 3, None, None, None
    _run_on_case(on_case, item, summary)
    assert summary.outputs_failed == 1 and "ValueError" in summary.outputs_error
    assert "Secretive" not in summary.outputs_error


@needs_model
def test_explain_writes_private_dicom_outputs_for_a_film_with_a_name_in_patient_sex(tmp_path):
    film = cr_dataset()
    film.PatientSex, film.PatientBirthDate = SECRET, "1950-01-01"
    path = tmp_path / "film.dcm"
    film.save_as(path, enforce_file_format=True)
    out = tmp_path / "out"
    proc = run_cli("explain", "--image", path, "--out", out, home=tmp_path / "home")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Secretive" not in proc.stdout + proc.stderr and "778899" not in proc.stderr
    for name in ("sr.dcm", "gradcam.dcm"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name
        ds = pydicom.dcmread(out / name)
        assert ds.PatientSex == "" and ds.PatientBirthDate == "" and ds.PatientID == "PHI-4711-MRN"
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "home").stat().st_mode) == 0o700
    assert "1 patient/study value" in proc.stderr or "2 patient/study value" in proc.stderr


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
