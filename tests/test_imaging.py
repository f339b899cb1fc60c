"""pneumo.data.imaging: every supported format and mode, DICOM done right, the one preprocessing
function (and why squashing), identifiers kept out, and pydicom's own test corpus."""
from __future__ import annotations

import collections
import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from pneumo import config
from pneumo.data import imaging
from pneumo.data.imaging import ImageMeta, XRay, load_for_model, pixel_digest, preprocess, read_image
from pneumo.errors import ImageError, PneumoError, UnsupportedImageError

PYDICOM_DATA = Path(pydicom.data.__file__).parent
IDENTIFIERS = ("DOE^JANE", "DOE", "JANE", "123456", "19800101", "ACC98765")


# --- builders --------------------------------------------------------------------------

def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def structured(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth image with chest-film-like structure (bands, blobs, a gradient), in [0, 1]."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = x / width, y / height
    img = 0.35 + 0.25 * np.sin(2 * np.pi * 5 * v) * np.exp(-((u - 0.5) ** 2) / 0.08)
    rng = np.random.default_rng(seed)
    for cx, cy, r in rng.random((6, 3)):
        img += 0.25 * np.exp(-((u - cx) ** 2 + (v - cy) ** 2) / (0.002 + 0.02 * r))
    return np.clip(img + 0.2 * u, 0, 1).astype(np.float32)


def make_dicom(stored: np.ndarray, *, photometric="MONOCHROME2", modality="DX", bits=12,
               preamble=True, **attrs) -> bytes:
    """A minimal DX 'For Presentation' Part 10 file carrying (fake) patient identifiers."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "DOE^JANE", "123456", "19800101"
    ds.AccessionNumber = "ACC98765"
    if modality is not None:
        ds.Modality = modality
    ds.Rows, ds.Columns = stored.shape[:2]
    ds.SamplesPerPixel = 1 if stored.ndim == 2 else stored.shape[2]
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits, bits - 1, 0
    if ds.SamplesPerPixel > 1:
        ds.PlanarConfiguration = 0
    ds.PixelData = stored.astype("<u2").tobytes()
    for key, value in attrs.items():
        setattr(ds, key, value)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    data = buf.getvalue()
    return data if preamble else data[132:]


def relabel(path: Path, modality: str = "DX") -> bytes:
    """A pydicom test file with its Modality changed, pixel data (compressed or not) untouched."""
    ds = pydicom.dcmread(path)
    ds.Modality = modality
    buf = io.BytesIO()
    ds.save_as(buf)
    return buf.getvalue()


def shipped(name: str) -> Path:
    path = PYDICOM_DATA / "test_files" / name
    assert path.is_file(), f"{name} ships with the pinned pydicom (requirements.txt)"
    return path


def check_xray(xray: XRay) -> None:
    assert isinstance(xray.meta, ImageMeta)
    assert xray.pixels.dtype == np.float32 and xray.pixels.ndim == 2
    assert xray.pixels.shape == (xray.meta.height, xray.meta.width)
    assert np.isfinite(xray.pixels).all()
    assert xray.pixels.min() >= 0 and xray.pixels.max() <= 1


GRAY = (np.add.outer(np.arange(96), np.arange(128)) % 256).astype(np.uint8)  # 96x128 ramp


# --- raster formats ----------------------------------------------------------------------

def test_png_8bit_gray_is_exact():
    xray = read_image(encode(Image.fromarray(GRAY), "PNG"))
    check_xray(xray)
    np.testing.assert_allclose(xray.pixels, GRAY / 255, atol=1e-6)
    assert xray.meta == ImageMeta("png", 128, 96, 8, "L", None, None, None, None, False, 0.0)


@pytest.mark.parametrize("peak, bits", [(65535, 16), (4095, 12)])
def test_png_16bit_scaled_by_its_bit_depth(peak, bits):
    arr = (np.linspace(0, 1, 96 * 128).reshape(96, 128) * peak).astype(np.uint16)
    xray = read_image(encode(Image.fromarray(arr), "PNG"))
    check_xray(xray)
    assert xray.meta.bit_depth == bits and xray.meta.mode.startswith("I")
    np.testing.assert_allclose(xray.pixels, arr / peak, atol=1e-6)
    assert xray.pixels.max() == pytest.approx(1.0)


def test_rgb_is_converted_to_gray_and_colour_recorded():
    rgb = np.zeros((96, 128, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 0
    xray = read_image(encode(Image.fromarray(rgb), "PNG"))
    check_xray(xray)
    assert xray.meta.was_color and xray.meta.mode == "RGB"
    assert xray.meta.color_spread == pytest.approx((100 + 100) / 510, abs=1e-3)
    np.testing.assert_allclose(xray.pixels, (200 * 0.299 + 100 * 0.587) / 255, atol=2 / 255)


def test_gray_saved_as_rgb_has_no_colour_spread():
    xray = read_image(encode(Image.fromarray(GRAY).convert("RGB"), "PNG"))
    assert xray.meta.was_color and xray.meta.color_spread == 0.0
    np.testing.assert_allclose(xray.pixels, GRAY / 255, atol=1 / 255)


def test_rgba_alpha_is_composited_on_black():
    rgba = np.dstack([GRAY, GRAY, GRAY, np.full_like(GRAY, 255)])
    rgba[:, :64, 3] = 0  # left half transparent
    xray = read_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    check_xray(xray)
    assert np.all(xray.pixels[:, :64] == 0)
    np.testing.assert_allclose(xray.pixels[:, 64:], GRAY[:, 64:] / 255, atol=1 / 255)


def test_gray_with_alpha_and_palette_and_bilevel():
    la = Image.fromarray(np.dstack([GRAY, np.full_like(GRAY, 255)]), "LA")
    np.testing.assert_allclose(read_image(encode(la, "PNG")).pixels, GRAY / 255, atol=1 / 255)
    pal = read_image(encode(Image.fromarray(GRAY).convert("P"), "PNG"))
    check_xray(pal)
    assert pal.meta.was_color and pal.meta.color_spread == 0.0
    bilevel = read_image(encode(Image.fromarray(GRAY).convert("1"), "PNG"))
    assert bilevel.meta.bit_depth == 1 and set(np.unique(bilevel.pixels)) <= {0.0, 1.0}


def test_jpeg_gray_and_cmyk():
    gray = read_image(encode(Image.fromarray(GRAY), "JPEG", quality=95))
    check_xray(gray)
    assert gray.meta.source_format == "jpeg" and not gray.meta.was_color
    assert np.abs(gray.pixels - GRAY / 255).mean() < 0.02
    cmyk = read_image(encode(Image.fromarray(GRAY).convert("RGB").convert("CMYK"), "JPEG"))
    check_xray(cmyk)
    assert cmyk.meta.mode == "CMYK" and cmyk.meta.was_color
    assert np.abs(cmyk.pixels - gray.pixels).mean() < 0.05


def test_tiff_8bit_and_16bit_and_bmp():
    tif = read_image(encode(Image.fromarray(GRAY), "TIFF"))
    assert tif.meta.source_format == "tiff"
    np.testing.assert_allclose(tif.pixels, GRAY / 255, atol=1e-6)
    wide = (GRAY.astype(np.uint16) * 257)
    tif16 = read_image(encode(Image.fromarray(wide), "TIFF"))
    assert tif16.meta.bit_depth == 16
    np.testing.assert_allclose(tif16.pixels, GRAY / 255, atol=1e-6)
    bmp = read_image(encode(Image.fromarray(GRAY), "BMP"))
    assert bmp.meta.source_format == "bmp"
    np.testing.assert_allclose(bmp.pixels, GRAY / 255, atol=1e-6)


def test_format_is_sniffed_not_taken_from_the_extension(tmp_path):
    path = tmp_path / "scan.jpg"
    path.write_bytes(encode(Image.fromarray(GRAY), "PNG"))
    xray = read_image(path, name="scan.jpg")
    assert xray.meta.source_format == "png"
    dcm = tmp_path / "film.png"
    dcm.write_bytes(make_dicom(np.tile(np.arange(128, dtype=np.uint16) * 32, (96, 1))))
    assert read_image(dcm).meta.source_format == "dicom"


def test_every_kind_of_source_reads_the_same(tmp_path):
    data = encode(Image.fromarray(GRAY), "PNG")
    path = tmp_path / "x.png"
    path.write_bytes(data)
    reads = [read_image(data), read_image(bytearray(data)), read_image(memoryview(data)),
             read_image(io.BytesIO(data)), read_image(str(path)), read_image(path)]
    with open(path, "rb") as fh:
        reads.append(read_image(fh))
    for xray in reads:
        np.testing.assert_array_equal(xray.pixels, reads[0].pixels)
        assert xray.meta == reads[0].meta
    with pytest.raises(TypeError):
        read_image(12345)


# --- DICOM ---------------------------------------------------------------------------------

STORED = (np.add.outer(np.arange(96) * 20, np.arange(128) * 10) % 4096).astype(np.uint16)


def test_dicom_monochrome1_is_inverted_to_match_monochrome2():
    mono2 = read_image(make_dicom(STORED))
    mono1 = read_image(make_dicom(4095 - STORED, photometric="MONOCHROME1"))
    check_xray(mono2)
    assert mono1.meta.photometric == "MONOCHROME1" and mono2.meta.photometric == "MONOCHROME2"
    np.testing.assert_allclose(mono1.pixels, mono2.pixels, atol=1e-6)
    assert mono2.pixels.min() == 0 and mono2.pixels.max() == 1  # no window: stored min..max
    assert mono2.meta.bit_depth == 12 and mono2.meta.modality == "DX"


def test_dicom_window_centre_and_width_are_applied():
    xray = read_image(make_dicom(STORED, WindowCenter=2048, WindowWidth=1024))
    below, above = STORED <= 2048 - 512, STORED > 2048 + 512
    assert np.all(xray.pixels[below] == 0) and np.all(xray.pixels[above] == 1)
    between = ~below & ~above
    expected = ((STORED[between] - 2047.5) / 1023 + 0.5)
    np.testing.assert_allclose(xray.pixels[between], expected, atol=1e-3)
    # The same window on MONOCHROME1 data, then inverted, gives the same picture.
    mono1 = read_image(make_dicom(4095 - STORED, photometric="MONOCHROME1",
                                  WindowCenter=2047, WindowWidth=1024))
    assert np.abs(mono1.pixels - xray.pixels).mean() < 2e-3


def test_dicom_rescale_then_window():
    # Stored s -> s*2 - 1000 (modality LUT); the window is in those output units.
    xray = read_image(make_dicom(STORED, RescaleSlope=2, RescaleIntercept=-1000,
                                 WindowCenter=3096, WindowWidth=2048))
    plain = read_image(make_dicom(STORED, WindowCenter=2048, WindowWidth=1024))
    np.testing.assert_allclose(xray.pixels, plain.pixels, atol=2e-3)


def test_dicom_voi_lut_sequence_is_applied():
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 12]
    lut = np.clip((np.arange(4096) - 1000) * 2, 0, 4095).astype(np.uint16)  # a steep LUT
    item.add_new(0x00283006, "US", lut.tolist())  # LUTData: US, not the ambiguous OW
    xray = read_image(make_dicom(STORED, VOILUTSequence=[item]))
    np.testing.assert_allclose(xray.pixels, lut[STORED] / 4095, atol=1e-6)


def test_dicom_without_preamble_and_bare_dataset():
    full = read_image(make_dicom(STORED))
    no_preamble = read_image(make_dicom(STORED, preamble=False))
    np.testing.assert_array_equal(no_preamble.pixels, full.pixels)
    ds = pydicom.dcmread(io.BytesIO(make_dicom(STORED)))
    del ds.file_meta
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, implicit_vr=True, little_endian=True)
    bare = read_image(buf.getvalue())
    np.testing.assert_array_equal(bare.pixels, full.pixels)


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm",
                                  "MR_small_jpeg_ls_lossless.dcm", "MR_small_bigendian.dcm",
                                  "MR_small_implicit.dcm"])
def test_compressed_and_other_syntaxes_decode_like_the_uncompressed_file(name):
    reference = read_image(relabel(shipped("MR_small.dcm")))
    xray = read_image(relabel(shipped(name)))
    check_xray(xray)
    np.testing.assert_allclose(xray.pixels, reference.pixels, atol=1e-6)


@pytest.mark.parametrize("name", ["JPEG2000.dcm", "JPGExtended.dcm", "693_J2KI.dcm",
                                  "J2K_pixelrep_mismatch.dcm"])
def test_lossy_compressed_dicom_decodes(name):
    xray = read_image(relabel(shipped(name)))
    check_xray(xray)
    assert xray.pixels.std() > 0.01


def test_jpeg_lossless_is_decodable_and_colour_is_refused():
    path = shipped("SC_rgb_jpeg_gdcm.dcm")  # the shipped JPEG Lossless (Process 14) file
    ds = pydicom.dcmread(path)
    assert ds.pixel_array.shape == (100, 100, 3)  # the pylibjpeg decoder is wired in
    with pytest.raises(UnsupportedImageError, match="colour DICOM"):
        read_image(path)


@pytest.mark.filterwarnings("ignore:Invalid value for VR CS")  # the planted bad Modality
def test_identifiers_never_leave_the_reader():
    xray = read_image(make_dicom(STORED, ViewPosition="PA", BodyPartExamined="CHEST"))
    assert xray.meta.view_position == "PA" and xray.meta.body_part == "CHEST"
    texts = [repr(xray.meta), str(xray.meta), repr(vars(xray.meta))]
    refused = [
        make_dicom(STORED, modality="CT"),
        make_dicom(STORED, modality="DOE^JANE"),
        make_dicom(np.dstack([STORED] * 3), photometric="RGB"),
        make_dicom(STORED, NumberOfFrames=2),
        make_dicom(STORED[:32, :32]),
        make_dicom(STORED)[:-1000],
    ]
    for data in refused:
        with pytest.raises(ImageError) as err:
            read_image(data)
        texts.append(str(err.value))
    texts.append(repr(read_image(make_dicom(STORED, BodyPartExamined="123456")).meta))
    for text in texts:
        for ident in IDENTIFIERS:
            assert ident not in text, (ident, text)


# --- preprocess --------------------------------------------------------------------------

def test_preprocess_shape_range_and_no_mutation():
    pixels = structured(300, 200)
    before = pixels.copy()
    out = preprocess(pixels)
    assert out.shape == (224, 224, 1) and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 1
    np.testing.assert_array_equal(pixels, before)
    same = preprocess(structured(64, 64), size=64)
    assert same.shape == (64, 64, 1)
    np.testing.assert_array_equal(same[..., 0], structured(64, 64))
    same[0, 0, 0] = 7  # a copy, not a view of the input
    assert preprocess(pixels[..., None], size=32).shape == (32, 32, 1)


@pytest.mark.parametrize("bad", [np.full((10, 10), 1.5, np.float32), np.full((10, 10), -0.1),
                                 np.full((10, 10), np.nan), np.zeros((10, 10), np.uint8),
                                 np.zeros((2, 10, 10)), np.zeros(10)])
def test_preprocess_refuses_what_it_must_not_guess(bad):
    with pytest.raises(ImageError):
        preprocess(bad)


def test_squashed_copy_and_original_preprocess_alike():
    """Why squash-resize: the Kermany copies were squashed to 224x224 8-bit JPEGs."""
    original = structured(1500, 1000)
    copy_img = Image.fromarray(np.round(original * 255).astype(np.uint8)).resize((224, 224), Image.BICUBIC)
    copy = preprocess(read_image(encode(copy_img.convert("RGB"), "JPEG", quality=90)).pixels)
    full_png = encode(Image.fromarray(np.round(original * 255).astype(np.uint8)), "PNG")
    full_jpeg = encode(Image.fromarray(np.round(original * 255).astype(np.uint8)), "JPEG", quality=90)
    for candidate in (preprocess(original), preprocess(read_image(full_png).pixels),
                      load_for_model(full_jpeg)[0]):  # the last one uses JPEG draft mode
        assert np.abs(candidate - copy).mean() < 0.02
    # Cropping or letterboxing instead would not agree with the copy.
    centre_crop = preprocess(original[:, 250:1250])
    assert np.abs(centre_crop - copy).mean() > 0.02


def test_load_for_model_and_draft_agree_with_full_decode():
    big = encode(Image.fromarray(np.round(structured(2000, 1600) * 255).astype(np.uint8)), "JPEG")
    fast, meta = load_for_model(big)
    full = preprocess(read_image(big).pixels)
    assert fast.shape == (224, 224, 1) and meta.width == 2000 and meta.height == 1600
    assert np.abs(fast - full).mean() < 0.005
    with pytest.raises(TypeError):
        load_for_model(big, colour=True)


def test_pixel_digest():
    pixels = structured(128, 96)
    digest = pixel_digest(pixels)
    assert len(digest) == 64 and digest == pixel_digest(pixels.copy())
    assert digest == pixel_digest(pixels.astype(np.float64))
    changed = pixels.copy()
    changed[0, 0] += 1e-3
    assert pixel_digest(changed) != digest
    assert pixel_digest(pixels.reshape(128, 96)) != digest


def test_pixel_budget_default_env_and_argument(monkeypatch):
    data = encode(Image.fromarray(GRAY), "PNG")  # 12,288 px
    monkeypatch.delenv("PNEUMO_MAX_PIXELS", raising=False)
    assert imaging.max_pixels_setting() == imaging.DEFAULT_MAX_PIXELS == 50_000_000
    monkeypatch.setenv("PNEUMO_MAX_PIXELS", "10000")
    with pytest.raises(UnsupportedImageError, match="pixel budget"):
        read_image(data)
    assert read_image(data, max_pixels=20_000).meta.width == 128  # the argument wins
    monkeypatch.setenv("PNEUMO_MAX_PIXELS", "lots")
    with pytest.raises(PneumoError, match="PNEUMO_MAX_PIXELS"):
        read_image(data)


# --- pydicom's shipped corpus: read or refused, never anything else ----------------------

def _corpus() -> list[Path]:
    files = []
    for folder in ("test_files", "charset_files"):
        for path in sorted((PYDICOM_DATA / folder).rglob("*")):
            if path.is_file() and (path.suffix == ".dcm" or (not path.suffix and pydicom.misc.is_dicom(path))):
                files.append(path)
    return files


CORPUS = _corpus()
OUTCOMES: dict[str, str] = {}


def _outcome(path: Path) -> str:
    try:
        check_xray(read_image(path))
        return "read"
    except UnsupportedImageError as err:
        reason = str(err)
        for key in ("modality", "multi-frame", "colour", "pixel budget", "at least"):
            if key in reason:
                return f"refused: {key}"
        return "refused: other unsupported"
    except ImageError as err:
        return "error: " + str(err).split("(")[0].strip()


@pytest.mark.parametrize("path", CORPUS, ids=[str(p.relative_to(PYDICOM_DATA)) for p in CORPUS])
def test_pydicom_corpus_file_is_read_or_refused(path):
    OUTCOMES[path.name] = _outcome(path)  # any other exception fails the test


def test_pydicom_corpus_summary(capsys):
    assert len(CORPUS) > 50
    outcomes = {p.name: OUTCOMES.get(p.name) or _outcome(p) for p in CORPUS}
    counts = collections.Counter(outcomes.values())
    with capsys.disabled():
        print(f"\npydicom corpus ({len(CORPUS)} files):")
        for outcome, n in sorted(counts.items()):
            print(f"  {n:4d}  {outcome}")
    # pydicom ships almost no plain radiographs; the relabelled-file tests cover decoding.
    assert counts["read"] >= 1 and counts["refused: modality"] > 50


# --- real data ----------------------------------------------------------------------------

def _kermany_test_images(n: int) -> list[Path]:
    root = config.kermany_dir() / "test"
    paths = sorted((root / "NORMAL").glob("*.jpeg"))[: n // 2] + sorted((root / "PNEUMONIA").glob("*.jpeg"))[: n // 2]
    assert len(paths) == n, f"expected {n} test images under {root}"
    return paths


@pytest.mark.data
def test_kermany_test_images_read():
    for path in _kermany_test_images(20):
        xray = read_image(path)
        check_xray(xray)
        assert xray.meta.source_format == "jpeg" and (xray.meta.width, xray.meta.height) == (224, 224)
        assert xray.pixels.std() > 0.05
        batch, meta = load_for_model(path)
        assert batch.shape == (224, 224, 1) and batch.dtype == np.float32


@pytest.mark.data
def test_kermany_rgb_jpegs_are_gray_in_colour_clothing():
    metas = [read_image(p).meta for p in _kermany_test_images(20)]
    rgb = [m for m in metas if m.was_color]
    assert rgb, "expected the Kermany copies to be RGB JPEGs"
    assert max(m.color_spread for m in rgb) < 0.01
