"""Hostile and unsuitable inputs: each refused with the right error type and a one-line
message that names the reason, before any large allocation."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from pneumo.data.imaging import read_image
from pneumo.errors import ImageError, UnsupportedImageError
from pneumo.qa.hostile_bytes import dicom_bytes, png_header_only

PYDICOM_FILES = Path(pydicom.data.__file__).parent / "test_files"
GRAY = (np.add.outer(np.arange(96), np.arange(128)) % 256).astype(np.uint8)


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def dicom(rows=96, cols=128, *, modality="DX", photometric="MONOCHROME2", samples=1,
          pixel_bytes: bytes | None = None, **attrs) -> bytes:
    frames = int(attrs.get("NumberOfFrames", 1))
    if pixel_bytes is None:
        pixel_bytes = bytes(rows * cols * samples * frames * 2)
    if samples > 1:
        attrs.setdefault("PlanarConfiguration", 0)
    return dicom_bytes(rows, cols, modality=modality, pixel_bytes=pixel_bytes,
                       PatientName="DOE^JANE", PatientID="123456", SamplesPerPixel=samples,
                       PhotometricInterpretation=photometric, **attrs)


def refused(data, error=ImageError, match: str = "", **kw) -> str:
    """Assert a refusal of exactly this kind with a one-line message; return it (how quickly it
    comes: `python -m pneumo bench --parts guards`, not a wall-clock assert on a shared machine)."""
    with pytest.raises(error) as err:
        read_image(data, **kw)
    message = str(err.value)
    assert "\n" not in message and message.strip() == message and message
    assert match.lower() in message.lower(), message
    if error is ImageError:
        assert not isinstance(err.value, UnsupportedImageError), message
    for ident in ("DOE", "JANE", "123456"):
        assert ident not in message
    return message


# --- not an image at all -------------------------------------------------------------------

def test_empty_bytes_and_empty_file(tmp_path):
    refused(b"", match="empty")
    (tmp_path / "x.png").write_bytes(b"")
    refused(tmp_path / "x.png", match="empty")
    refused(io.BytesIO(b""), match="empty")


def test_random_bytes_named_png(tmp_path):
    path = tmp_path / "chest.png"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    message = refused(path, match="not a recognised image (despite the .png name)")
    refused(path.read_bytes(), name="chest.png", match=".png")
    assert "chest" not in message  # a file name may hold a patient's name


def test_text_and_pdf_are_not_images():
    refused(b"patient,wbc\n1,12.3\n" * 20, match="not a recognised image")
    refused(b"%PDF-1.4\n" + bytes(500), match="not a recognised image")


def test_missing_file_and_folder(tmp_path):
    refused(tmp_path / "absent.png", match="not found")
    refused(tmp_path, match="folder")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF"])
def test_truncated_at_half(fmt):
    data = encode(Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 300), dtype=np.uint8)), fmt)
    refused(data[: len(data) // 2], match="truncated or corrupt" if fmt != "TIFF" else "")


def test_corrupt_png_chunk():
    data = bytearray(encode(Image.fromarray(GRAY), "PNG"))
    data[60:80] = bytes(20)  # inside IDAT: the CRC or the zlib stream breaks
    refused(bytes(data), match="PNG")


# --- too big, too small, too many frames --------------------------------------------------

def test_decompression_bomb_png_is_refused_from_its_header():
    bomb = png_header_only(50_000, 50_000)
    assert len(bomb) < 200
    refused(bomb, UnsupportedImageError, match="pixel budget")


def test_png_over_the_budget_names_its_size():
    message = refused(png_header_only(10_000, 10_000), UnsupportedImageError, match="pixel budget")
    assert "10000x10000" in message
    refused(encode(Image.fromarray(GRAY), "PNG"), UnsupportedImageError, match="pixel budget",
            max_pixels=5_000)


def test_huge_dimension_dicom_is_refused_before_decoding():
    data = dicom(60_000, 60_000, pixel_bytes=bytes(1000))
    message = refused(data, UnsupportedImageError, match="pixel budget")
    assert "60000x60000" in message


def test_too_small():
    refused(encode(Image.fromarray(GRAY[:50, :]), "PNG"), UnsupportedImageError, match="at least 64")
    refused(encode(Image.fromarray(np.zeros((200, 63), np.uint8)), "JPEG"), UnsupportedImageError,
            match="at least 64")
    refused(dicom(32, 32), UnsupportedImageError, match="at least 64")


def test_animated_gif_apng_and_multipage_tiff():
    frames = [Image.fromarray(GRAY), Image.fromarray(255 - GRAY), Image.fromarray(GRAY // 2)]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    refused(gif, UnsupportedImageError, match="multi-frame GIF (3 frames)")
    apng = encode(frames[0], "PNG", save_all=True, append_images=frames[1:])
    refused(apng, UnsupportedImageError, match="multi-frame PNG")
    tiff = encode(frames[0], "TIFF", save_all=True, append_images=frames[1:])
    refused(tiff, UnsupportedImageError, match="multi-frame TIFF")
    assert read_image(encode(frames[0], "GIF")).pixels.shape == (96, 128)  # one frame is fine


# --- DICOM that must not be read ---------------------------------------------------------

def test_dicom_pixel_data_shorter_or_longer_than_declared():
    full = 96 * 128 * 2
    refused(dicom(pixel_bytes=bytes(full // 2)), match="pixel data")
    refused(dicom(pixel_bytes=bytes(full * 2)), match="pixel data")
    assert read_image(dicom(pixel_bytes=bytes(full))).pixels.shape == (96, 128)


def test_truncated_dicom_file():
    data = dicom()
    refused(data[: len(data) // 2], match="pixel data")
    refused(data[:300])


@pytest.mark.parametrize("name, code", [("CT_small.dcm", "CT"), ("MR_small.dcm", "MR")])
def test_ct_and_mr_are_refused(name, code):
    path = PYDICOM_FILES / name
    assert path.is_file(), f"pydicom {pydicom.__version__} no longer ships {name}"   # pinned: it does
    refused(path, UnsupportedImageError, match=f"modality is {code}")


@pytest.mark.parametrize("modality", ["US", "NM", "PT", "MG", "XA", "SEG"])
def test_other_modalities_are_refused(modality):
    refused(dicom(modality=modality), UnsupportedImageError, match=f"modality is {modality}")


@pytest.mark.filterwarnings("ignore:Invalid value for VR CS")
def test_a_free_text_modality_is_not_echoed():
    message = refused(dicom(modality="DOE^JANE"), UnsupportedImageError, match="unrecognised")
    assert "DOE" not in message


def test_accepted_modalities_and_missing_modality():
    for modality in ("CR", "DX", "RG", "OT"):
        assert read_image(dicom(modality=modality)).meta.modality == modality
    ds = pydicom.dcmread(io.BytesIO(dicom()))
    del ds.Modality
    buf = io.BytesIO()
    ds.save_as(buf)
    assert read_image(buf.getvalue()).meta.modality is None


@pytest.mark.parametrize("photometric", ["RGB", "YBR_FULL"])
def test_colour_dicom(photometric):
    refused(dicom(photometric=photometric, samples=3), UnsupportedImageError,
            match=f"colour DICOM (photometric {photometric}")


def test_palette_dicom():
    refused(dicom(photometric="PALETTE COLOR"), UnsupportedImageError, match="colour DICOM")


def test_for_processing_dicom():
    refused(dicom(PresentationIntentType="FOR PROCESSING"), UnsupportedImageError,
            match="For Processing")


def test_multiframe_dicom():
    refused(dicom(NumberOfFrames=3), UnsupportedImageError, match="multi-frame DICOM (3 frames)")


def test_dicom_without_pixels():
    ds = pydicom.dcmread(io.BytesIO(dicom()))
    del ds.PixelData
    buf = io.BytesIO()
    ds.save_as(buf)
    refused(buf.getvalue(), match="no pixel data")
    del ds.Rows
    buf = io.BytesIO()
    ds.save_as(buf)
    refused(buf.getvalue(), match="Rows/Columns")


def test_oversized_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "big.png"
    with open(path, "wb") as fh:  # sparse: no disk is used
        fh.truncate(10 * 1024 * 1024)
    refused(path, UnsupportedImageError, match="larger", max_pixels=100_000)
    refused(io.BytesIO(bytes(2 * 1024 * 1024)), UnsupportedImageError, match="larger", max_pixels=100_000)
    assert os.path.getsize(path) == 10 * 1024 * 1024
