"""Fuzzing read_image: random bytes, and valid PNG/JPEG/TIFF/GIF/DICOM with random mutations
and truncations. Each input is either read into a valid XRay or refused with ImageError (a
PneumoError); no other exception, and no hang. Deterministic (derandomize) so CI is stable;
inputs are small so the whole file runs in well under 30 s."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pneumo.data.imaging import read_image
from pneumo.errors import ImageError, PneumoError
from pneumo.qa.hostile_bytes import dicom_bytes

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _dicom(arr: np.ndarray) -> bytes:
    return dicom_bytes(*arr.shape, pixels=arr, PhotometricInterpretation="MONOCHROME1",
                       WindowCenter=2000, WindowWidth=3000)


def _seeds() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    gray = (np.add.outer(np.arange(72), np.arange(80)) * 2 % 256).astype(np.uint8)
    gray[::7] = rng.integers(0, 256, gray[::7].shape, dtype=np.uint8)
    rgb = np.dstack([gray, gray[::-1], 255 - gray])
    seeds = {
        "png8": _encode(Image.fromarray(gray), "PNG"),
        "png16": _encode(Image.fromarray(gray.astype(np.uint16) * 200), "PNG"),
        "png_rgba": _encode(Image.fromarray(np.dstack([rgb, gray]), "RGBA"), "PNG"),
        "jpeg": _encode(Image.fromarray(gray), "JPEG", quality=80),
        "jpeg_rgb": _encode(Image.fromarray(rgb), "JPEG", quality=80),
        "tiff": _encode(Image.fromarray(gray), "TIFF"),
        "gif": _encode(Image.fromarray(gray), "GIF"),
        "dicom": _dicom(gray.astype(np.uint16) * 16),
    }
    seeds["dicom_no_preamble"] = seeds["dicom"][132:]
    rle = Path(pydicom.data.__file__).parent / "test_files" / "MR_small_RLE.dcm"
    if rle.is_file():  # a compressed syntax, relabelled so the decoder is reached
        ds = pydicom.dcmread(rle)
        ds.Modality = "DX"
        buf = io.BytesIO()
        ds.save_as(buf)
        seeds["dicom_rle"] = buf.getvalue()
    return seeds


SEEDS = _seeds()
MAGICS = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"GIF89a", b"BM",
          b"RIFF\x00\x00\x00\x00WEBP", b"\x02\x00", b"\x08\x00", bytes(128) + b"DICM"]


def check(data: bytes) -> None:
    """A valid XRay or an ImageError (how quickly: `pneumo bench`, guards; the timeout guards a hang)."""
    try:
        xray = read_image(data)
    except ImageError as err:
        assert isinstance(err, PneumoError)
        message = str(err)
        assert message and "\n" not in message
    else:
        pixels = xray.pixels
        assert pixels.dtype == np.float32 and pixels.ndim == 2
        assert pixels.shape == (xray.meta.height, xray.meta.width)
        assert np.isfinite(pixels).all() and pixels.min() >= 0 and pixels.max() <= 1
        assert 0 <= xray.meta.color_spread <= 1


def test_seeds_are_valid():
    for name, data in SEEDS.items():
        xray = read_image(data)
        assert xray.pixels.shape[0] >= 64, name


@FUZZ
@given(st.binary(min_size=0, max_size=4096))
def test_random_bytes(data):
    check(data)


@FUZZ
@given(st.sampled_from(MAGICS), st.binary(min_size=0, max_size=2048))
def test_random_bytes_behind_a_magic_number(magic, tail):
    check(magic + tail)


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["set", "flip", "insert", "delete", "max"]))
        pos = draw(st.integers(0, len(data) - 1)) if data else 0
        if op == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 64))]
        elif op == "max" and data:  # large lengths and dimensions are what parsers trust
            data[pos:pos + 4] = b"\xff\xff\xff\x7f"
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@FUZZ
@given(mutated())
def test_mutated_valid_images(data):
    check(data)
