"""Sizes declared inside compressed data, checked before anything is allocated for them.

A DICOM's Rows/Columns are only what the dataset claims: an encapsulated JPEG, JPEG-LS or
JPEG 2000 frame carries its own size, which is what a decoder allocates for, and a deflated
dataset inflates to whatever its stream holds. Here each of those is read from the codec's
own header (or inflated in capped steps) and refused when it differs from the dataset or
exceeds the pixel budget. Messages are one line and never carry a dataset value other than
a number.
"""
from __future__ import annotations

import io
import re
import struct
import zlib

from pneumo.errors import ImageError, UnsupportedImageError

__all__ = ["DEFLATED_SYNTAXES", "inflate_dicom", "check_codec_frame", "MAX_JPEG_SCANS",
           "HEADER_INFLATE_CAP", "INFLATE_MARGIN"]

# Transfer syntaxes whose whole dataset (after the file meta) is a raw deflate stream.
DEFLATED_SYNTAXES = frozenset({"1.2.840.10008.1.2.1.99",      # Deflated Explicit VR LE
                               "1.2.840.10008.1.2.4.95",      # JPIP Referenced Deflate
                               "1.2.840.10008.1.2.4.205"})    # JPIP HTJ2K Referenced Deflate
JPEG_FAMILY = frozenset({"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",
                         "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",
                         "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"}
                        | {f"1.2.840.10008.1.2.4.{n}" for n in range(52, 67)})  # retired JPEG
JPEG2000_FAMILY = frozenset({"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
                             "1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.93",
                             "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202",
                             "1.2.840.10008.1.2.4.203"})

HEADER_INFLATE_CAP = 8 << 20   # the non-pixel part of a dataset is KBs; 8 MiB is plenty
INFLATE_MARGIN = 1 << 20       # trailing elements after the pixel data
_STEP = 16 << 20               # inflate in steps of at most this much output
MAX_JPEG_SCANS = 1000          # progressive JPEGs use ~10; thousands is a CPU bomb

# SOF0-3, 5-7, 9-11, 13-15 and JPEG-LS SOF55 (0xF7); 0xC4 DHT, 0xC8 JPG, 0xCC DAC are not SOFs.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC} | {0xF7}
_NEXT_MARKER = re.compile(rb"\xff+([^\x00\xff\xd0-\xd7])")   # past entropy-coded data
_NEXT_MARKER_LS = re.compile(rb"\xff+([\x80-\xcf\xd8-\xfe])")  # JPEG-LS stuffs a 0 bit after 0xFF


# --- deflated datasets ----------------------------------------------------------------------

def inflate_dicom(data: bytes, max_pixels: int) -> bytes | None:
    """For a deflated-dataset DICOM: the inflated dataset (bare, Explicit VR LE, no file meta)
    when it inflates to no more than its declared image needs; None for any other file.

    The stream is inflated in capped steps: first at most HEADER_INFLATE_CAP to read Rows,
    Columns and the sample layout, then at most what that image needs plus INFLATE_MARGIN,
    never more than the pixel budget at 32 bits a pixel."""
    import pydicom
    from pydicom.filereader import _read_file_meta_info, read_preamble

    if data[128:132] != b"DICM" and data[:2] != b"\x02\x00":
        return None   # no file meta, so no transfer syntax: a bare dataset is never deflated
    fp = io.BytesIO(data)
    try:
        read_preamble(fp, True)
        meta = _read_file_meta_info(fp)
        syntax = str(meta.get("TransferSyntaxUID", "")).strip("\x00 ")
    except Exception:   # noqa: BLE001 - an unreadable meta is reported by the normal reader
        return None
    if syntax not in DEFLATED_SYNTAXES:
        return None
    stream = memoryview(data)[fp.tell():]
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        head = inflater.decompress(stream, HEADER_INFLATE_CAP)
    except zlib.error:
        raise ImageError("deflated DICOM dataset is not a valid deflate stream") from None
    if inflater.eof or not inflater.unconsumed_tail:
        return head   # all of it was within the header cap
    with_pixels = _declared_bytes(head, pydicom)
    if with_pixels is None:
        raise UnsupportedImageError(
            f"deflated DICOM has more than {HEADER_INFLATE_CAP >> 20} MB of header before "
            "its pixel data (or no Rows/Columns): refused as a decompression bomb")
    header_len, rows, cols, need = with_pixels
    if rows * cols > max_pixels:
        raise UnsupportedImageError(
            f"DICOM declares {cols}x{rows} pixels, over the pixel budget of {max_pixels:,}")
    cap = min(header_len + need + INFLATE_MARGIN, max_pixels * 4 + HEADER_INFLATE_CAP + INFLATE_MARGIN)
    out = bytearray(head)
    tail = inflater.unconsumed_tail
    try:
        while tail and not inflater.eof and len(out) < cap:
            out += inflater.decompress(tail, min(_STEP, cap - len(out)))
            tail = inflater.unconsumed_tail
        more = bool(tail) and not inflater.eof and bool(inflater.decompress(tail, 1))
    except zlib.error:
        raise ImageError("deflated DICOM dataset is not a valid deflate stream") from None
    if more:
        raise UnsupportedImageError(
            f"deflated DICOM inflates to more than the {cap / 1e6:.1f} MB its {cols}x{rows} image "
            "needs: refused as a decompression bomb")
    return bytes(out)


def _declared_bytes(head: bytes, pydicom) -> tuple[int, int, int, int] | None:
    """(header bytes before the pixel data, rows, cols, bytes the pixel data may hold) from
    the start of an inflated dataset; None when the pixel data does not start within it."""
    buf = io.BytesIO(head)
    try:
        ds = pydicom.filereader.read_dataset(buf, False, True, stop_when=_at_pixels)
    except Exception:   # noqa: BLE001 - truncated or corrupt: there is no size to trust
        return None
    header_len = buf.tell()
    if header_len >= len(head):
        return None
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        bits = int(ds.get("BitsAllocated") or 16)
        samples = int(ds.get("SamplesPerPixel") or 1)
        frames = int(str(ds.get("NumberOfFrames") or 1).strip() or 1)
    except Exception:   # noqa: BLE001 - missing or non-numeric: no declared image
        return None
    if rows <= 0 or cols <= 0 or not 1 <= bits <= 64 or not 1 <= samples <= 4 or frames < 1:
        return None
    return header_len, rows, cols, rows * cols * ((bits + 7) // 8) * samples * frames


def _at_pixels(tag, vr, length) -> bool:
    return tag in (0x7FE00010, 0x7FE00008, 0x7FE00009)


# --- encapsulated frames --------------------------------------------------------------------

def check_codec_frame(frame: bytes, syntax: str, rows: int, cols: int, samples: int,
                      max_pixels: int) -> None:
    """Refuse an encapsulated frame whose codec header declares another size (or more
    components) than the dataset's Rows x Columns x SamplesPerPixel, or no size at all."""
    if syntax in JPEG_FAMILY:
        name = "JPEG-LS" if syntax in ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81") else "JPEG"
        sizes = _jpeg_sizes(frame, name, _NEXT_MARKER_LS if name == "JPEG-LS" else _NEXT_MARKER)
    elif syntax in JPEG2000_FAMILY:
        name = "JPEG 2000"
        sizes = [_j2k_size(frame)]
    else:
        return
    for width, height, components in sizes:
        if width * height > max_pixels:
            raise UnsupportedImageError(
                f"the {name} frame declares {width}x{height} pixels, over the pixel budget of "
                f"{max_pixels:,}")
        if (width, height) != (cols, rows) or components != samples:
            raise ImageError(
                f"the {name} frame declares {width}x{height} pixels x {components} components but "
                f"the DICOM header {cols}x{rows} x {samples}: inconsistent, refused")


def _jpeg_sizes(data: bytes, name: str, next_marker: re.Pattern) -> list[tuple[int, int, int]]:
    """(width, height, components) of every SOFn (and DHP, JPEG-LS oversize LSE) in a JPEG or
    JPEG-LS stream, walking its segments; ImageError when there is none."""
    if not data.startswith(b"\xff\xd8"):
        raise ImageError(f"the {name} frame does not start with an SOI marker: corrupt")
    sizes, pos, scans, end = [], 2, 0, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF or (scans and data[pos + 1] < 0x80):
            m = next_marker.search(data, pos)    # entropy-coded data after a scan header
            if m is None:
                break
            pos = m.start(1) - 1
        marker = data[pos + 1]
        if marker == 0xFF:          # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:   # SOI, TEM, RSTn: no length
            pos += 2
            continue
        if marker == 0xD9:          # EOI: a decoder stops here
            break
        (length,) = struct.unpack_from(">H", data, pos + 2)
        body = data[pos + 4: pos + 2 + length]
        if length < 2 or len(body) < length - 2:
            raise ImageError(f"the {name} frame has a truncated marker segment: corrupt")
        if marker in _SOF or marker == 0xDE:    # DHP carries the same fields as a SOF
            if len(body) < 6:
                raise ImageError(f"the {name} frame has a truncated SOF header: corrupt")
            _, height, width, comps = struct.unpack_from(">BHHB", body)
            sizes.append((width, height, comps))
        elif marker == 0xF8 and body[:1] == b"\x04":   # JPEG-LS LSE: oversize dimensions
            if len(body) < 2:
                raise ImageError(f"the {name} frame has a truncated LSE segment: corrupt")
            wxy = body[1]
            if wxy not in (2, 3, 4) or len(body) < 2 + 2 * wxy:
                raise ImageError(f"the {name} frame has a malformed LSE segment: corrupt")
            height = int.from_bytes(body[2:2 + wxy], "big")
            width = int.from_bytes(body[2 + wxy:2 + 2 * wxy], "big")
            sizes.append((width, height, sizes[-1][2] if sizes else 1))
        elif marker == 0xDA:
            scans += 1
            if scans > MAX_JPEG_SCANS:
                raise UnsupportedImageError(
                    f"the {name} frame has more than {MAX_JPEG_SCANS} scans: refused")
        pos += 2 + length
    if not sizes:
        raise ImageError(f"the {name} frame has no SOF header (no declared size): corrupt")
    return sizes


def _j2k_size(data: bytes) -> tuple[int, int, int]:
    """(width, height, components) from the SIZ marker of a JPEG 2000 codestream (bare, or in
    a JP2 file's jp2c box)."""
    start = 0
    if not data.startswith(b"\xff\x4f\xff\x51"):
        start = data.find(b"\xff\x4f\xff\x51", 0, 1 << 16)   # a JP2 wrapper: boxes first
        if start < 0:
            raise ImageError("the JPEG 2000 frame has no SIZ header (no declared size): corrupt")
    siz = data[start + 4: start + 4 + 38]
    if len(siz) < 38:
        raise ImageError("the JPEG 2000 frame has a truncated SIZ header: corrupt")
    _, _, xsiz, ysiz, xo, yo, _, _, _, _, comps = struct.unpack(">HHIIIIIIIIH", siz)
    if xo >= xsiz or yo >= ysiz:
        raise ImageError("the JPEG 2000 frame's SIZ header declares an empty image: corrupt")
    return xsiz - xo, ysiz - yo, comps
