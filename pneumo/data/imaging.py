"""Read a chest radiograph (PNG, JPEG, TIFF, DICOM; also BMP/GIF/WebP) into one grayscale
float32 array in [0, 1] (0 = black), and the one preprocessing function shared by training
and inference.

The format is sniffed from the bytes, never from the file name. Everything this module
refuses raises ImageError (unreadable) or UnsupportedImageError (readable, but not
something this tool may interpret), with a one-line message that says why. Sizes are
checked from the header before any pixel is decoded.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import warnings
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageChops, ImageStat

from pneumo.data.dicom_io import looks_like_dicom, read_dicom
from pneumo.errors import ImageError, PneumoError, UnsupportedImageError

__all__ = ["ImageMeta", "XRay", "DEFAULT_MAX_PIXELS", "MIN_SIDE", "max_pixels_setting",
           "read_image", "preprocess", "load_for_model", "pixel_digest"]

DEFAULT_MAX_PIXELS = 50_000_000  # a pixel budget; PNEUMO_MAX_PIXELS may change it
MIN_SIDE = 64                    # smaller images carry too little to read a chest film
RESAMPLE = Image.BILINEAR        # with reducing_gap: antialiased, and ~4 ms for 2000x2000
REDUCING_GAP = 2.0
MAX_FRAMES_COUNTED = 100         # a multi-frame file is refused; its count is only a message

# Magic numbers -> (our name, the PIL plugins allowed to open it).
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png", ["PNG"]),
    (b"\xff\xd8\xff", "jpeg", ["JPEG", "MPO"]),
    (b"II*\x00", "tiff", ["TIFF"]),
    (b"MM\x00*", "tiff", ["TIFF"]),
    (b"GIF87a", "gif", ["GIF"]),
    (b"GIF89a", "gif", ["GIF"]),
    (b"BM", "bmp", ["BMP"]),
)
_GRAY_MODES = {"1", "L", "LA", "La", "I", "F"}


@dataclass(frozen=True)
class ImageMeta:
    """What the source was; never a patient identifier (there is no field for one)."""
    source_format: str          # "png" | "jpeg" | "tiff" | "dicom" | "gif" | "bmp" | "webp"
    width: int                  # of the original
    height: int
    bit_depth: int              # bits per sample the values were scaled by (8, 12, 16, ...)
    mode: str                   # PIL mode or DICOM photometric interpretation as read
    photometric: str | None     # DICOM PhotometricInterpretation, else None
    modality: str | None        # DICOM Modality (CR/DX/...), else None
    view_position: str | None   # DICOM ViewPosition (PA/AP/LL...), else None
    body_part: str | None       # DICOM BodyPartExamined, else None
    was_color: bool             # the source had colour channels (converted to gray)
    color_spread: float         # mean(|R-G| + |G-B|) / (2 * 255) of the source: 0 gray .. 1
    age_years: float | None = None   # DICOM PatientAge, or birth vs study date: an age only, never a date
    age_bounds: tuple[float, float] | None = None   # a birth date alone: (at least, at most) years
    age_source: str | None = None    # which header attributes gave the age, in words (no value)


@dataclass(frozen=True)
class XRay:
    pixels: np.ndarray          # float32 (H, W) in [0, 1], 0 = black
    meta: ImageMeta


def max_pixels_setting(max_pixels: int | None = None) -> int:
    """The pixel budget: the argument, else PNEUMO_MAX_PIXELS, else DEFAULT_MAX_PIXELS."""
    if max_pixels is None:
        env = os.environ.get("PNEUMO_MAX_PIXELS", "").strip().replace("_", "")
        if not env:
            return DEFAULT_MAX_PIXELS
        try:
            max_pixels = int(env)
        except ValueError:
            raise PneumoError("PNEUMO_MAX_PIXELS must be a positive whole number") from None
    if int(max_pixels) <= 0:
        raise PneumoError("the pixel budget (max_pixels) must be positive")
    return int(max_pixels)


def read_image(source: str | os.PathLike | bytes | BinaryIO, *, max_pixels: int | None = None,
               name: str | None = None) -> XRay:
    """Read one image into an XRay: float32 (H, W) in [0, 1], 0 = black, plus its ImageMeta.

    `source` is a path, the bytes, or a binary file-like object (read from its current
    position). `name` (an upload's file name) is only used to word an error; the format is
    always sniffed from the content. Refusals: ImageError for empty, truncated, corrupt or
    non-image input; UnsupportedImageError for non-radiograph DICOM modalities, multi-frame,
    colour DICOM, sides under MIN_SIDE px, or more pixels than the budget (see
    max_pixels_setting), which is checked from the header before decoding.
    """
    return _read(source, max_pixels_setting(max_pixels), name, draft=None)


def load_for_model(source, size: int = 224, **kw) -> tuple[np.ndarray, ImageMeta]:
    """read_image + preprocess: the model's (size, size, 1) float32 input and the meta.

    Large JPEGs are decoded with libjpeg's DCT scaling to no less than size x size (PIL's
    draft mode): several times faster, and tested to agree with the full decode.
    """
    xray = _read(source, max_pixels_setting(kw.pop("max_pixels", None)), kw.pop("name", None),
                 draft=size)
    if kw:
        raise TypeError(f"unexpected arguments: {', '.join(sorted(kw))}")
    return preprocess(xray.pixels, size), xray.meta


def preprocess(pixels: np.ndarray, size: int = 224) -> np.ndarray:
    """THE one preprocessing function (training and inference): a (H, W) float image in
    [0, 1] -> float32 (size, size, 1) in [0, 1].

    The whole image is squash-resized to a square (aspect ratio not kept), antialiased
    (PIL bilinear on a float image with reducing_gap=2). Why squash: the Kermany copies we
    train on were squashed to 224x224 from originals of aspect ~1.2-1.7, so squashing a
    full-size original gives the same input as its squashed copy (tested), where cropping
    or padding would not. Values outside [0, 1] or non-finite raise ImageError (no guessing).
    """
    arr = np.asarray(pixels)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2 or min(arr.shape) < 1:
        raise ImageError(f"preprocess needs a 2-D grayscale image, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ImageError(f"preprocess needs float pixels in [0, 1], got {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    lo, hi = float(arr.min()), float(arr.max())
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -1e-6 or hi > 1 + 1e-6:
        raise ImageError(f"preprocess needs pixels in [0, 1], got [{lo:.3g}, {hi:.3g}]")
    size = int(size)
    if arr.shape != (size, size):
        arr = np.array(Image.fromarray(arr).resize((size, size), RESAMPLE,
                                                     reducing_gap=REDUCING_GAP), dtype=np.float32)
    else:
        arr = arr.copy()  # never hand back (or clip) the caller's own array
    return np.clip(arr, 0.0, 1.0, out=arr)[..., None]


def pixel_digest(pixels: np.ndarray) -> str:
    """sha256 hex of the shape and the float32 pixel bytes: names an image in the case log
    without its file name."""
    arr = np.ascontiguousarray(pixels, dtype=np.float32)
    digest = hashlib.sha256(repr(tuple(arr.shape)).encode())
    digest.update(arr.tobytes())
    return digest.hexdigest()


# --- reading -------------------------------------------------------------------------

def _read_bytes(source, max_bytes: int) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        try:
            # non-blocking open, then fstat: a FIFO or a device named as a film is refused at once
            # (a plain open() of a FIFO waits for a writer forever; /dev/zero never ends)
            fd = os.open(source, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
            with os.fdopen(fd, "rb") as fh:
                st = os.fstat(fh.fileno())
                if stat.S_ISDIR(st.st_mode):
                    raise ImageError("image path is a folder, not a file")
                if not stat.S_ISREG(st.st_mode):
                    raise ImageError("image path is not a regular file (a pipe, socket or device)")
                if st.st_size > max_bytes:
                    raise UnsupportedImageError("file is larger than any image within the pixel budget")
                data = fh.read(max_bytes + 1)
        except FileNotFoundError:
            raise ImageError("image file not found") from None
        except IsADirectoryError:
            raise ImageError("image path is a folder, not a file") from None
        except OSError as exc:
            raise ImageError(f"cannot read the image file ({type(exc).__name__})") from None
        if len(data) > max_bytes:              # grew while being read
            raise UnsupportedImageError("file is larger than any image within the pixel budget")
        return data
    if hasattr(source, "read"):
        data = source.read(max_bytes + 1)
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError("the file-like source must be opened in binary mode")
        if len(data) > max_bytes:
            raise UnsupportedImageError("file is larger than any image within the pixel budget")
        return bytes(data)
    raise TypeError(f"cannot read an image from {type(source).__name__}")


def _sniff(data: bytes) -> tuple[str, list[str]] | None:
    if data[128:132] == b"DICM":  # first: a DICOM preamble may itself be a TIFF header
        return "dicom", []
    for magic, fmt, plugins in _MAGIC:
        if data.startswith(magic):
            return fmt, plugins
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp", ["WEBP"]
    if looks_like_dicom(data):
        return "dicom", []
    return None


def _not_an_image(name: str | None) -> ImageError:
    ext = os.path.splitext(name or "")[1].lstrip(".").lower()
    hint = f" (despite the .{ext} name)" if re.fullmatch(r"[a-z0-9]{1,5}", ext) else ""
    return ImageError(f"not a recognised image{hint}: expected PNG, JPEG, TIFF or DICOM content")


def _read(source, max_pixels: int, name: str | None, draft: int | None) -> XRay:
    data = _read_bytes(source, max_bytes=max_pixels * 8 + (1 << 20))  # 8 B/px: RGBA 16-bit
    if not data:
        raise ImageError("empty file (0 bytes)")
    sniffed = _sniff(data)
    if sniffed is None:
        is_path = isinstance(source, (str, os.PathLike))
        raise _not_an_image(name or (os.fspath(source) if is_path else None))
    fmt, plugins = sniffed
    if fmt == "dicom":
        pixels, fields = read_dicom(data, max_pixels)
        return XRay(pixels, ImageMeta(**fields))
    return _read_pil(data, fmt, plugins, max_pixels, draft)


def _read_pil(data: bytes, fmt: str, plugins: list[str], max_pixels: int,
              draft: int | None) -> XRay:
    label = fmt.upper()
    declared = _declared_size(data, fmt)   # before PIL: libwebp allocates its canvas at open
    if declared and declared[0] * declared[1] > max_pixels:
        raise UnsupportedImageError(f"{label} declares {declared[0]}x{declared[1]} pixels, over the "
                                    f"pixel budget of {max_pixels:,}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # bomb/EXIF warnings: we check sizes ourselves
            img = Image.open(io.BytesIO(data), formats=plugins)  # reads the header only
    except Image.DecompressionBombError:
        # PIL's own hard limit (2 x Image.MAX_IMAGE_PIXELS) applies too when it is the lower one
        pil_limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        if pil_limit and pil_limit < max_pixels:
            raise UnsupportedImageError(f"{label} declares more than {pil_limit:,} pixels, PIL's "
                                        "decompression-bomb limit (below the pixel budget)") from None
        raise UnsupportedImageError(
            f"{label} declares more pixels than the pixel budget of {max_pixels:,}") from None
    except Exception:  # PIL raises many types on bad headers
        raise ImageError(f"not a readable {label} image (bad or truncated header)") from None
    width, height = img.size
    if width * height > max_pixels:
        raise UnsupportedImageError(
            f"{label} declares {width}x{height} pixels, over the pixel budget of {max_pixels:,}")
    if min(width, height) < MIN_SIDE:
        raise UnsupportedImageError(
            f"image is {width}x{height} pixels; at least {MIN_SIDE} px per side is needed")
    if img.format != "MPO":  # MPO: a camera's stereo JPEG; frame 0 is the photo
        frames = _frame_count(img, label)
        if frames > 1:
            shown = f"{frames}" if frames <= MAX_FRAMES_COUNTED else f"over {MAX_FRAMES_COUNTED}"
            raise UnsupportedImageError(f"multi-frame {label} ({shown} frames); send a single image")
    try:
        if draft and img.format == "JPEG" and min(width, height) >= 2 * draft:
            img.draft(img.mode, (draft, draft))  # DCT scaling, never below size x size
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL's "corrupt EXIF" noise; real failures raise
            img.load()
        pixels, bit_depth, was_color, spread = _to_gray(img)
    except PneumoError:
        raise
    except Exception:  # truncated streams, bad chunks, decoder errors
        raise ImageError(f"the {label} image is truncated or corrupt") from None
    meta = ImageMeta(source_format=fmt, width=width, height=height, bit_depth=bit_depth,
                     mode=img.mode, photometric=None, modality=None, view_position=None,
                     body_part=None, was_color=was_color, color_spread=spread)
    return XRay(pixels, meta)


def _frame_count(img: Image.Image, label: str) -> int:
    """Frames in the file, counted no further than MAX_FRAMES_COUNTED + 1 and without
    decoding any: PIL's n_frames walks every TIFF page (quadratic time in their number) or
    GIF frame, so it is only asked where the header states it (APNG acTL, WebP)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if not getattr(img, "is_animated", False):
                return 1
            if img.format in ("PNG", "WEBP"):
                return int(img.n_frames)
            seek = img._seek if img.format in ("GIF", "TIFF") else img.seek  # no decode on GIF
            count = 1
            try:
                while count <= MAX_FRAMES_COUNTED:
                    if img.format == "GIF":
                        seek(count, False)
                    else:
                        seek(count)
                    count += 1
            except EOFError:
                pass
            img.seek(0)
            return count
    except PneumoError:
        raise
    except Exception:  # noqa: BLE001 - PIL raises many types on a bad frame table
        raise ImageError(f"not a readable {label} image (corrupt frame table)") from None


def _declared_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """(width, height) from the header's fixed fields (PNG IHDR, GIF screen, BMP, WebP), read
    without PIL so that the pixel budget, not PIL's own bomb limit, decides; None if unknown."""
    if fmt == "png" and data[12:16] == b"IHDR" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if fmt == "gif" and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if fmt == "bmp" and len(data) >= 26 and int.from_bytes(data[14:18], "little") >= 40:
        return (abs(int.from_bytes(data[18:22], "little", signed=True)),
                abs(int.from_bytes(data[22:26], "little", signed=True)))
    if fmt != "webp":
        return None
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        return (int.from_bytes(data[26:28], "little") & 0x3FFF,
                int.from_bytes(data[28:30], "little") & 0x3FFF)
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    return None


def _to_gray(img: Image.Image) -> tuple[np.ndarray, int, bool, float]:
    """Any PIL mode -> (float32 gray in [0, 1], bit depth used to scale, was_color, spread)."""
    mode = img.mode
    if mode in ("1", "L"):
        arr = np.asarray(img if mode == "L" else img.convert("L"), dtype=np.float32)
        return arr * np.float32(1 / 255), 1 if mode == "1" else 8, False, 0.0
    if mode in ("LA", "La"):  # drop alpha by compositing on black
        la = np.asarray(img.convert("LA"), dtype=np.float32)
        return la[..., 0] * la[..., 1] * np.float32(1 / 255**2), 8, False, 0.0
    if mode.startswith("I") or mode == "F":
        return (*_scale_wide(np.asarray(img)), False, 0.0)
    # Colour: palette, RGB(A/X), CMYK, YCbCr, LAB, HSV -> RGB (alpha composited on black).
    if mode in ("RGBA", "RGBa", "PA") or mode == "P" and "transparency" in img.info:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.uint16)
        rgb_img = Image.fromarray(((rgba[..., :3] * rgba[..., 3:] + 127) // 255).astype(np.uint8))
    else:
        rgb_img = img if mode == "RGB" else img.convert("RGB")
    gray = np.asarray(rgb_img.convert("L"), dtype=np.float32) * np.float32(1 / 255)
    return gray, 8, True, _color_spread(rgb_img)


def _scale_wide(arr: np.ndarray) -> tuple[np.ndarray, int]:
    """16/32-bit integer or float samples -> [0, 1].

    Integers in 0..65535 are scaled by their container: 12-bit (max 4095) when no value
    exceeds 4095, since radiographs exported as 16-bit PNG/TIFF usually hold 12-bit data
    and would otherwise look near-black; else 16-bit. Anything else (negative, wider than
    16 bits, floats outside [0, 1]) is scaled by its own min..max.
    """
    arr = np.asarray(arr)
    if arr.ndim != 2:
        raise ImageError(f"unsupported sample layout {arr.shape}")
    lo, hi = arr.min(), arr.max()
    if np.issubdtype(arr.dtype, np.integer) and lo >= 0 and hi <= 65535:
        bits = 12 if hi <= 4095 else 16
        return arr.astype(np.float32) * np.float32(1 / (2**bits - 1)), bits
    out = arr.astype(np.float32)
    bits = arr.dtype.itemsize * 8
    if np.issubdtype(arr.dtype, np.floating) and 0 <= lo and hi <= 1:
        return out, bits
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ImageError("image holds non-finite values")
    out -= np.float32(lo)
    return (out * np.float32(1 / (hi - lo)) if hi > lo else out), bits


def _color_spread(rgb: Image.Image) -> float:
    """mean(|R-G| + |G-B|) / 510, from histograms in C (a numpy pass costs more than decoding)."""
    red, green, blue = rgb.split()
    return float((ImageStat.Stat(ImageChops.difference(red, green)).mean[0]
                  + ImageStat.Stat(ImageChops.difference(green, blue)).mean[0]) / 510.0)
