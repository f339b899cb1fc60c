"""DICOM radiographs -> one grayscale float32 array in [0, 1] (0 = black), done the
standard way: modality LUT, then the VOI LUT or window, then MONOCHROME1 inverted.

Only non-identifying attributes are ever read out of the dataset: no name, ID, date or
accession number can reach the returned metadata, an error message or a log line.
"""
from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

import numpy as np

from pneumo.data.decode_limits import check_codec_frame, inflate_dicom
from pneumo.data.dicom_terms import RADIOGRAPH_MODALITIES, accepted_text, shown_modality
from pneumo.errors import ImageError, UnsupportedImageError

_GRAY = ("MONOCHROME1", "MONOCHROME2")
_KNOWN_PHOTOMETRIC = frozenset(
    {"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_PARTIAL_420", "YBR_PARTIAL_422", "YBR_ICT",
     "YBR_RCT", "PALETTE COLOR", "ARGB", "CMYK", "HSV", "XYB"}) | set(_GRAY)
_CS = re.compile(r"^[A-Z0-9 _]{1,16}$")  # the DICOM Code String character set
_TERM = re.compile(r"^[A-Z _]{1,16}$")  # view/body-part terms: letters only, so no ID passes


def looks_like_dicom(data: bytes) -> bool:
    """Part 10 with preamble ('DICM' at 128), or a preamble-less stream whose first tag is
    in group 0002 (file meta) or 0008 (a bare dataset), little or big endian."""
    if data[128:132] == b"DICM":
        return True
    return len(data) >= 8 and data[:2] in (b"\x02\x00", b"\x08\x00", b"\x00\x08")


def _get(ds, keyword):
    """A value or None: a corrupt element must not raise out of a metadata look-up."""
    try:
        value = ds.get(keyword)
        return None if value is None or isinstance(value, str) and not value.strip() else value
    except Exception:
        return None


def _code(ds, keyword, pattern=_CS) -> str | None:
    """A Code String attribute, kept only if it is one (no free text can pass)."""
    value = _get(ds, keyword)
    if not isinstance(value, (str, bytes)) and hasattr(value, "__iter__"):
        value = next(iter(value), None)  # multi-valued: the first value
    text = str(value).strip().upper() if value is not None else ""
    return text if pattern.match(text) else None


def _int(ds, keyword) -> int | None:
    value = _get(ds, keyword)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def read_dicom(data: bytes, max_pixels: int) -> tuple[np.ndarray, dict]:
    """Decode one single-frame grayscale radiograph; returns (pixels, ImageMeta fields)."""
    import pydicom
    from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    force = data[128:132] != b"DICM"
    inflated = inflate_dicom(data, max_pixels)   # a deflated dataset, inflated within its cap
    if inflated is not None:
        data, force = inflated, True             # now a bare Explicit VR LE dataset
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), force=force)
    except Exception as exc:
        raise ImageError(f"not a readable DICOM file ({type(exc).__name__})") from None

    modality = _code(ds, "Modality")
    raw_modality = _get(ds, "Modality")
    if raw_modality is not None and modality not in RADIOGRAPH_MODALITIES:
        raise UnsupportedImageError(
            f"DICOM modality is {shown_modality(modality)}, not a plain radiograph (accepted: {accepted_text()})")
    if _code(ds, "PresentationIntentType") == "FOR PROCESSING":
        raise UnsupportedImageError("DICOM is a 'For Processing' (raw detector) image; "
                                    "send the 'For Presentation' version")
    frames = _int(ds, "NumberOfFrames") or 1
    if frames > 1:
        raise UnsupportedImageError(
            f"multi-frame DICOM ({frames} frames); send a single radiograph")
    samples = _int(ds, "SamplesPerPixel") or 1
    photometric = _code(ds, "PhotometricInterpretation")
    if photometric is None and samples == 1:
        photometric = "MONOCHROME2"  # the only reading of an untagged one-sample image
    if samples != 1 or photometric not in _GRAY:
        shown = photometric if photometric in _KNOWN_PHOTOMETRIC else "unrecognised"
        raise UnsupportedImageError(
            f"colour DICOM (photometric {shown}, {samples} samples); radiographs are grayscale")
    rows, cols = _int(ds, "Rows"), _int(ds, "Columns")
    if not rows or not cols or rows < 0 or cols < 0:
        raise ImageError("DICOM has no valid Rows/Columns: not an image")
    if rows * cols > max_pixels:
        raise UnsupportedImageError(
            f"DICOM declares {cols}x{rows} pixels, over the pixel budget of {max_pixels:,}")
    if min(rows, cols) < 64:
        raise UnsupportedImageError(
            f"image is {cols}x{rows} pixels; at least 64 px per side is needed")
    if "PixelData" not in ds:
        raise ImageError("DICOM has no pixel data: not an image")
    bits_alloc, bits_stored = _int(ds, "BitsAllocated"), _int(ds, "BitsStored")
    if bits_alloc not in (1, 8, 16, 32) or not bits_stored or not 0 < bits_stored <= bits_alloc:
        raise ImageError("DICOM has invalid BitsAllocated/BitsStored")

    meta = getattr(ds, "file_meta", None)
    if meta is None or "TransferSyntaxUID" not in meta:
        # A bare dataset (no file meta): its encoding is what the parser found.
        if meta is None:
            ds.file_meta = meta = pydicom.dataset.FileMetaDataset()
        implicit, little = getattr(ds, "original_encoding", (False, True))
        meta.TransferSyntaxUID = (ImplicitVRLittleEndian if implicit
                                  else ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
    tsyntax = UID(str(meta.TransferSyntaxUID))
    if tsyntax.is_transfer_syntax and not tsyntax.is_compressed:
        expected = (rows * cols * bits_alloc + 7) // 8
        actual = len(ds.PixelData or b"")
        if actual < expected or actual > expected + 1:  # +1: padding to an even length
            raise ImageError(f"DICOM pixel data is {actual:,} bytes but Rows x Columns x bits "
                             f"declares {expected:,} (truncated or corrupt)")
    elif tsyntax.is_transfer_syntax and tsyntax.is_encapsulated:
        # The decoder allocates what the codec's own header says, not Rows x Columns.
        check_codec_frame(_first_frame(ds.PixelData), str(tsyntax), rows, cols, samples, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = ds.pixel_array
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - Rust decoders panic with a BaseException (pyo3)
        name = tsyntax.name if tsyntax.is_transfer_syntax else "unknown transfer syntax"
        raise ImageError(f"cannot decode DICOM pixel data ({name}, {type(exc).__name__})") from None
    if arr.shape != (rows, cols):
        raise ImageError(f"DICOM pixel data decodes to {arr.shape}, not Rows x Columns")

    pixels = _to_unit(arr, ds, photometric)
    fields = dict(source_format="dicom", width=cols, height=rows, bit_depth=bits_stored,
                  mode=photometric, photometric=photometric, modality=modality,
                  view_position=_code(ds, "ViewPosition", _TERM),
                  body_part=_code(ds, "BodyPartExamined", _TERM),
                  was_color=False, color_spread=0.0, **_age_fields(header_age(ds)))
    return pixels, fields


_AGE = re.compile(r"^(\d{3})([DWMY])$")
_AGE_UNIT_YEARS = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0}
_FILM_DATES = ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")
# The earliest date a DICOM film can have been taken: DICOM 3.0 was published in 1993 (ACR-NEMA
# 300, 1993), so a birth date alone bounds the age from below by the age on 1 January 1993.
EARLIEST_FILM_DATE = (1993, 1, 1)


@dataclass(frozen=True)
class HeaderAge:
    """What a DICOM header says of the patient's age, as ages only (the dates never leave).
    `years` when it is known (PatientAge, or the birth date against a film date); otherwise the
    interval a birth date alone allows: at least the age on EARLIEST_FILM_DATE, at most the age
    today. `source` names the attribute(s) in words ('its birth date alone'), for a reason line."""
    years: float | None
    at_least: float | None = None
    at_most: float | None = None
    source: str = ""


def header_age(ds, today=None) -> HeaderAge | None:
    """The patient's age from every source the header has: PatientAge ('045Y', '018M') first,
    then PatientBirthDate against StudyDate / SeriesDate / AcquisitionDate / ContentDate (the
    first present), then PatientBirthDate alone (a bound, see HeaderAge). None when there is none."""
    import datetime as dt

    match = _AGE.match(str(_get(ds, "PatientAge") or "").strip().upper())
    if match:
        return HeaderAge(round(int(match.group(1)) * _AGE_UNIT_YEARS[match.group(2)], 3),
                         source="its patient age")
    birth = _dicom_date(_get(ds, "PatientBirthDate"))
    if birth is None:
        return None
    film = next((d for d in (_dicom_date(_get(ds, k)) for k in _FILM_DATES) if d), None)
    if film is not None:
        if film < birth:
            return None                      # a film before birth: the dates are wrong, not the patient
        return HeaderAge(round((film - birth).days / 365.25, 3),
                         source="its birth date and film date")
    today = today or dt.date.today()
    if birth > today:
        return None
    earliest = dt.date(*EARLIEST_FILM_DATE)
    return HeaderAge(None, at_least=round(max((earliest - birth).days, 0) / 365.25, 3),
                     at_most=round((today - birth).days / 365.25, 3),
                     source="its birth date alone")


def patient_age_years(ds) -> float | None:
    """The patient's age in years at the study (see header_age); None when only bounded."""
    age = header_age(ds)
    return age.years if age is not None else None


def _age_fields(age: HeaderAge | None) -> dict:
    if age is None:
        return {}
    bounds = (age.at_least, age.at_most) if age.years is None else None
    return dict(age_years=age.years, age_bounds=bounds, age_source=age.source)


def _dicom_date(value):
    """A DICOM DA value (YYYYMMDD) as a date, or None when absent or not a valid date."""
    import datetime as dt
    text = str(value or "").strip()
    try:
        return dt.datetime.strptime(text[:8], "%Y%m%d").date() if len(text) >= 8 else None
    except ValueError:
        return None


def _first_frame(pixel_data: bytes) -> bytes:
    """The one frame of encapsulated pixel data (all its fragments), as the decoder sees it."""
    from pydicom.encaps import get_frame

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return get_frame(pixel_data, 0, number_of_frames=1)
    except Exception as exc:  # noqa: BLE001 - any malformed item/offset table
        raise ImageError(f"DICOM encapsulated pixel data is malformed ({type(exc).__name__})") from None


def _to_unit(arr: np.ndarray, ds, photometric: str) -> np.ndarray:
    """Modality LUT -> VOI (LUT or window) -> [0, 1] by the VOI output range -> 0 = black."""
    from pydicom.pixels import apply_modality_lut, apply_voi, apply_voi_lut

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            modality_out = apply_modality_lut(arr, ds)
        except Exception:
            modality_out = arr  # a broken rescale/LUT: the stored values are the best we have
        values, lo, hi = modality_out, None, None
        try:
            if _get(ds, "VOILUTSequence"):
                # The LUT's own output range (its descriptor's bit count is often wrong).
                entries, first = ds.VOILUTSequence[0].LUTDescriptor[:2]
                lut = apply_voi(np.arange(first, first + (entries or 65536)), ds, index=0)
                values = apply_voi(values, ds, index=0)
                lo, hi = float(lut.min()), float(lut.max())
            elif _get(ds, "WindowCenter") is not None and _get(ds, "WindowWidth") is not None:
                values = apply_voi_lut(values, ds, index=0, prefer_lut=False)
                lo, hi = _window_output_range(ds)
        except Exception:
            # an unusable window or LUT: fall back to the data's own range
            values, lo, hi = modality_out, None, None
    values = np.asarray(values, dtype=np.float32)
    if lo is None:
        lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    out = (values - np.float32(lo)) / np.float32(hi - lo) if hi != lo else np.zeros_like(values)
    out = np.nan_to_num(np.clip(out, 0.0, 1.0, out=out), copy=False)
    invert = photometric == "MONOCHROME1" or _code(ds, "PresentationLUTShape") == "INVERSE"
    return np.subtract(1.0, out, out=out) if invert else out


def _window_output_range(ds) -> tuple[float, float]:
    """The output range pydicom's apply_windowing maps a window onto (PS3.3 C.11.2.1.2)."""
    bits = int(ds.BitsStored)
    if _get(ds, "ModalityLUTSequence"):
        y_min, y_max = 0.0, float(2 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1)
    elif (_int(ds, "PixelRepresentation") or 0) == 0:
        y_min, y_max = 0.0, float(2 ** bits - 1)
    else:
        y_min, y_max = float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
    slope, intercept = _get(ds, "RescaleSlope"), _get(ds, "RescaleIntercept")
    if slope is not None and intercept is not None:
        slope, intercept = float(slope), float(intercept)
        y_min, y_max = y_min * slope + intercept, y_max * slope + intercept
    return y_min, y_max
