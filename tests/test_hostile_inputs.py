"""Issue 16 hostile inputs: declared sizes inside compressed data (pneumo.data.decode_limits) and lab
values that used to escape as ValueError/OverflowError or flood a case with warnings. The
memory side of the bombs is in test_bombs.py; here: the right refusal, and that real files of
the same kinds are still read."""
from __future__ import annotations

import io
import json
import os
import warnings

import numpy as np
import pydicom
import pytest
from PIL import Image

from pneumo.data.decode_limits import HEADER_INFLATE_CAP, check_codec_frame, inflate_dicom
from pneumo.data.imaging import read_image
from pneumo.data.labs import default_panel, parse_labs
from pneumo.data.labs.parse import MAX_ISSUES
from pneumo.errors import ImageError, LabError, UnsupportedImageError
from pneumo.qa import hostile_bytes as hostile

PANEL = default_panel()
TEST_FILES = os.path.join(os.path.dirname(pydicom.data.__file__), "test_files")


def _refused(data, error, match):
    with pytest.raises(error) as err:
        read_image(data)
    message = str(err.value)
    assert "\n" not in message and match.lower() in message.lower(), message
    assert not any(p.lower() in message.lower() for p in hostile.PHI_STRINGS), message
    return message


# --- deflated datasets ---------------------------------------------------------------------

def _deflated(rows, cols, **attrs) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(hostile.dicom_bytes(rows, cols, phi=True, **attrs)))
    ds.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@pytest.mark.parametrize("side", [256, 2100])   # 2100^2 x 2 B is over the 8 MiB header step
def test_a_real_deflated_film_is_read(side):
    data = _deflated(side, side)
    assert side < 1000 or 2 * side * side > HEADER_INFLATE_CAP
    xray = read_image(data)
    plain = read_image(hostile.dicom_bytes(side, side))
    assert xray.pixels.shape == (side, side)
    np.testing.assert_array_equal(xray.pixels, plain.pixels)


def test_deflate_bomb_is_refused_and_names_no_identifier():
    message = _refused(hostile.deflate_bomb_dicom(512, 512, 64), UnsupportedImageError, "decompression bomb")
    assert "512x512" in message


def test_deflated_dataset_declaring_over_the_budget():
    _refused(hostile.deflate_bomb_dicom(9000, 9000, 64), UnsupportedImageError, "pixel budget")


def test_corrupt_deflate_stream():
    data = bytearray(hostile.deflate_bomb_dicom(512, 512, 16))
    head = len(data) - len(data) // 2
    data[head: head + 64] = b"\xff" * 64
    with pytest.raises(ImageError) as err:
        read_image(bytes(data))
    assert "\n" not in str(err.value)


def test_other_syntaxes_are_not_inflated():
    assert inflate_dicom(hostile.dicom_bytes(64, 64), 10**6) is None
    assert inflate_dicom(b"\x89PNG" + bytes(300), 10**6) is None


# --- codec headers -------------------------------------------------------------------------

def _as_dx(name: str) -> bytes:
    path = os.path.join(TEST_FILES, name)
    assert os.path.isfile(path), f"{name} ships with the pinned pydicom (requirements.txt)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        ds.Modality = "DX"
        buf = io.BytesIO()
        ds.save_as(buf)
    return buf.getvalue()


@pytest.mark.parametrize("name", ["693_J2KI.dcm", "JPEG2000.dcm", "MR_small_jp2klossless.dcm",
                                  "MR_small_jpeg_ls_lossless.dcm", "MR_small_RLE.dcm", "image_dfl.dcm"])
def test_real_compressed_dicoms_are_still_read(name):
    data = _as_dx(name)
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    assert read_image(data).pixels.shape == (ds.Rows, ds.Columns)


@pytest.mark.parametrize("builder, syntax, codec", [
    (hostile.jpeg_declaring, hostile.JPEG_BASELINE, "JPEG"),
    (hostile.jpeg_ls_declaring, hostile.JPEG_LS, "JPEG-LS"),
    (hostile.j2k_declaring, hostile.JPEG_2000, "JPEG 2000"),
])
def test_codec_header_bombs(builder, syntax, codec):
    over = _refused(hostile.encapsulated_dicom(builder(60_000, 60_000), syntax, 64, 64),
                    UnsupportedImageError, "pixel budget")
    assert over.startswith(f"the {codec} frame declares 60000x60000")
    mismatch = _refused(hostile.encapsulated_dicom(builder(3000, 2000), syntax, 64, 64), ImageError,
                        "inconsistent")
    assert "3000x2000" in mismatch and "64x64" in mismatch


def test_a_consistent_encapsulated_jpeg_is_decoded():
    data = hostile.encapsulated_dicom(hostile.jpeg_declaring(64, 64), hostile.JPEG_BASELINE, 64, 64)
    assert read_image(data).pixels.shape == (64, 64)


@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_walk_reads_real_streams(progressive):
    img = Image.fromarray(hostile.chest_like(300, 200, bits=8).astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, "JPEG", progressive=progressive, quality=95)
    check_codec_frame(buf.getvalue(), hostile.JPEG_BASELINE, 300, 200, 1, 10**6)  # no error
    with pytest.raises(ImageError, match="inconsistent"):
        check_codec_frame(buf.getvalue(), hostile.JPEG_BASELINE, 200, 300, 1, 10**6)


def test_frames_without_a_size_are_refused():
    with pytest.raises(ImageError, match="SOI"):
        check_codec_frame(b"not a jpeg", hostile.JPEG_BASELINE, 64, 64, 1, 10**6)
    with pytest.raises(ImageError, match="no SOF"):
        check_codec_frame(b"\xff\xd8\xff\xd9", hostile.JPEG_BASELINE, 64, 64, 1, 10**6)
    with pytest.raises(ImageError, match="SIZ"):
        check_codec_frame(b"\x00" * 100, hostile.JPEG_2000, 64, 64, 1, 10**6)


# --- frames and canvases -------------------------------------------------------------------

def test_frame_bombs_are_refused_without_counting_every_frame():
    assert "over 100 frames" in _refused(hostile.tiff_page_bomb(5000), UnsupportedImageError, "multi-frame TIFF")
    _refused(hostile.apng_frame_bomb(1_000_000), UnsupportedImageError, "multi-frame PNG")


def test_webp_canvas_is_checked_before_libwebp_allocates_it():
    assert "12000x12000" in _refused(hostile.webp_canvas_bomb(12_000), UnsupportedImageError, "pixel budget")


def test_png_size_is_named_even_past_pils_own_limit():
    assert "50000x50000" in _refused(hostile.png_header_only(50_000, 50_000), UnsupportedImageError,
                                     "pixel budget")


# --- labs ----------------------------------------------------------------------------------

def _obs(value, code="6690-2") -> dict:
    return {"resourceType": "Observation", "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "valueQuantity": {"value": value, "unit": "10*3/uL"}}


def test_a_5000_digit_fhir_integer_is_a_refused_value():
    text = json.dumps(_obs(0)).replace('"value": 0', '"value": ' + "9" * 5000)
    reading = parse_labs(text.encode(), PANEL)
    assert reading.values["wbc"] is None and "not a finite number" in reading.errors[0].reason
    with pytest.raises(LabError) as err:
        reading.raise_for_errors()
    assert "\n" not in str(err.value) and len(str(err.value)) < 200


@pytest.mark.parametrize("value", [10**5000, 10**400, -(10**1000)], ids=["5001-digit", "401-digit", "negative"])
def test_ints_beyond_float_range(value):
    reading = parse_labs({"wbc": value}, PANEL)
    assert reading.values["wbc"] is None and "not a finite number" in reading.errors[0].reason
    assert parse_labs(_obs(value), PANEL).errors   # an already-parsed FHIR resource too


def test_unprintable_codes_and_keys_are_unknown_not_crashes():
    doc = _obs(5, code=10**5000)
    doc["code"]["text"] = 10**5000
    assert parse_labs(doc, PANEL).unknown == ["(unreadable code)"]
    assert parse_labs({10**5000: 1}, PANEL).unknown
    assert parse_labs({"resourceType": "Observation", "status": ["final"], **_obs(5)}, PANEL).values["wbc"] == 5


@pytest.mark.parametrize("literal, expect", [("NaN", None), ("Infinity", "finite"), ("-Infinity", "finite"),
                                             ("1e99999", "finite")])
def test_non_finite_json_numbers(literal, expect):
    text = json.dumps(_obs(0)).replace('"value": 0', f'"value": {literal}')
    reading = parse_labs(text.encode(), PANEL)
    assert reading.values["wbc"] is None
    assert (expect in reading.errors[0].reason) if expect else not reading.errors


def test_deep_json_is_one_line():
    for depth in (990, 100_000):
        text = '{"resourceType": "Observation", "code": {"text": ' + "[" * depth + "]" * depth + "}}"
        try:
            parse_labs(text.encode(), PANEL)
        except LabError as err:
            assert "\n" not in str(err)


@pytest.mark.parametrize("value, field, what", [("<5", "warnings", "warnings"), ("lots", "errors", "refused values")])
def test_floods_are_capped_with_one_line(value, field, what):
    doc = {"resourceType": "Bundle", "entry": [{"resource": _obs(value)}] * 4999}
    reading = parse_labs(json.dumps(doc).encode(), PANEL)
    issues = getattr(reading, field)
    assert len(issues) == MAX_ISSUES + 1
    assert issues[-1].reason == f"... and {4999 - MAX_ISSUES} more {what}"
    if field == "errors":
        with pytest.raises(LabError) as err:
            reading.raise_for_errors()
        assert "\n" not in str(err.value) and len(str(err.value)) < 2000


def test_non_utf8_csv_is_read_as_cp1252():
    reading = parse_labs("sodium,wbc,rdw\n140,9,\xe9\n".encode("latin-1"), PANEL)
    assert reading.values["sodium"] == 140 and reading.errors[0].key == "rdw"
