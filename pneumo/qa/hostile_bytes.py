"""The bytes of hostile files: a chest-like DICOM (optionally carrying made-up identifiers),
and decompression or declared-size bombs in each format the reader accepts. pneumo.qa.hostile
writes them into its corpus; the tests call them directly."""
from __future__ import annotations

import io
import struct
import zlib
from typing import Callable

import numpy as np

# Made-up identifiers planted in DICOM headers and FHIR resources; none may reach a message.
PHI = {"PatientName": "QXZPHI^TESTPERSON", "PatientID": "PHI-7731946",
       "PatientBirthDate": "19010203", "InstitutionName": "PHIQX General Hospital",
       "AccessionNumber": "ACC99887766", "ReferringPhysicianName": "DRQX^WHO"}
PHI_STRINGS = ("QXZPHI", "TESTPERSON", "PHI-7731946", "19010203", "PHIQX", "ACC99887766", "DRQX")


def encode(img, fmt: str, **kw) -> bytes:
    """A PIL image's bytes in fmt."""
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def chest_like(rows: int, cols: int, bits: int = 12) -> np.ndarray:
    """A smooth chest-film-like uint16 pattern: bright body, two dark lung fields, a spine."""
    y = np.linspace(-1, 1, rows, dtype=np.float32)[:, None]
    x = np.linspace(-1, 1, cols, dtype=np.float32)[None, :]
    body = np.exp(-(x ** 2 / 0.8 + y ** 2 / 1.2) ** 2)
    lungs = np.exp(-(((np.abs(x) - 0.38) / 0.22) ** 2 + ((y + 0.05) / 0.5) ** 2) ** 2)
    img = 0.25 + 0.6 * body - 0.45 * lungs + 0.2 * np.exp(-(x / 0.06) ** 2)
    img = np.clip(img, 0, 1) * ((1 << bits) - 1)
    return img.astype(np.uint16)


def dicom_bytes(rows: int = 512, cols: int = 512, *, modality: str = "DX", pixels=None,
                pixel_bytes: bytes | None = None, phi: bool = False, **attrs) -> bytes:
    """A 16-bit MONOCHROME2 DICOM (explicit VR LE); phi=True plants the made-up identifiers."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"   # Digital X-Ray for presentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.Rows, ds.Columns = modality, rows, cols
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.ViewPosition, ds.BodyPartExamined = "PA", "CHEST"
    if phi:
        for key, value in PHI.items():
            setattr(ds, key, value)
    if pixel_bytes is None:
        pixel_bytes = (chest_like(rows, cols) if pixels is None else pixels).astype("<u2").tobytes()
    ds.PixelData = pixel_bytes
    for key, value in attrs.items():
        setattr(ds, key, value)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares width x height with a stub IDAT (a decompression bomb's shape)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 65536)) + chunk(b"IEND", b""))


def _split_meta(part10: bytes) -> tuple[bytes, bytes]:
    """(preamble + file meta, dataset) of a Part 10 file."""
    from pydicom.filereader import _read_file_meta_info, read_preamble

    fp = io.BytesIO(part10)
    read_preamble(fp, False)
    _read_file_meta_info(fp)
    return part10[:fp.tell()], part10[fp.tell():]


def _with_syntax(part10: bytes, syntax: str) -> tuple[bytes, bytes]:
    """(preamble + file meta re-written with another transfer syntax, dataset)."""
    from pydicom import dcmread
    from pydicom.filewriter import write_file_meta_info

    head, dataset = _split_meta(part10)
    meta = dcmread(io.BytesIO(part10), stop_before_pixels=True).file_meta
    meta.TransferSyntaxUID = syntax
    buf = io.BytesIO()
    buf.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(buf, meta, enforce_standard=True)
    return buf.getvalue(), dataset


def deflate_bomb_dicom(rows: int = 512, cols: int = 512, inflated_mib: int = 2048,
                       phi: bool = True) -> bytes:
    """A Deflated Explicit VR LE DICOM declaring rows x cols whose dataset inflates to about
    inflated_mib MiB (a pixel data element that long): ~1 kB on disk per inflated MiB. Built
    from one full-flushed deflate block of zeros repeated, so it costs no memory to make."""
    part10 = dicom_bytes(rows, cols, pixel_bytes=b"", phi=phi)
    meta, dataset = _with_syntax(part10, "1.2.840.10008.1.2.1.99")
    dataset = dataset[: dataset.rfind(b"\xe0\x7f\x10\x00")]      # drop the empty PixelData
    length = (inflated_mib << 20) & ~1
    pixel_header = b"\xe0\x7f\x10\x00OW\x00\x00" + struct.pack("<I", length)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    start = deflater.compress(dataset + pixel_header) + deflater.flush(zlib.Z_FULL_FLUSH)
    block = deflater.compress(bytes(1 << 20)) + deflater.flush(zlib.Z_FULL_FLUSH)
    return meta + start + block * (length >> 20) + deflater.flush()


def encapsulated_dicom(frame: bytes, syntax: str, rows: int, cols: int, *, bits: int = 8,
                       phi: bool = True) -> bytes:
    """A one-frame DICOM whose encapsulated pixel data is `frame` (a JPEG, JPEG-LS or J2K)."""
    from pydicom.encaps import encapsulate

    part10 = dicom_bytes(rows, cols, pixel_bytes=b"", phi=phi, BitsAllocated=8 if bits <= 8 else 16,
                         BitsStored=bits, HighBit=bits - 1)
    meta, dataset = _with_syntax(part10, syntax)
    dataset = dataset[: dataset.rfind(b"\xe0\x7f\x10\x00")]
    value = encapsulate([frame])
    return meta + dataset + b"\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff" + value + \
        b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"


def jpeg_declaring(width: int, height: int, *, side: int = 64) -> bytes:
    """A real side x side 8-bit gray JPEG whose SOF0 is patched to declare width x height."""
    from PIL import Image

    data = bytearray(encode(Image.fromarray(chest_like(side, side, bits=8).astype(np.uint8)), "JPEG"))
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def jpeg_ls_declaring(width: int, height: int) -> bytes:
    """A JPEG-LS stream whose SOF55 declares width x height (the scan data is a stub)."""
    sof55 = b"\xff\xf7" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    sos = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00" + b"\x00\x00\x00"
    return b"\xff\xd8" + sof55 + sos + bytes(64) + b"\xff\xd9"


def j2k_declaring(width: int, height: int) -> bytes:
    """A JPEG 2000 codestream whose SIZ declares width x height, one 8-bit component."""
    siz = struct.pack(">HHIIIIIIIIH", 41, 0, width, height, 0, 0, width, height, 0, 0, 1) + b"\x07\x01\x01"
    cod = b"\xff\x52" + struct.pack(">HBBHBBBBBB", 12, 0, 0, 1, 0, 5, 4, 4, 0, 0)
    qcd = b"\xff\x5c" + struct.pack(">HB", 4, 0x40) + b"\x40"
    return b"\xff\x4f\xff\x51" + siz + cod + qcd + b"\xff\x90" + struct.pack(">HHIBB", 10, 0, 0, 0, 1) \
        + b"\xff\x93" + bytes(32) + b"\xff\xd9"


def apng_frame_bomb(frames: int = 1_000_000, side: int = 128) -> bytes:
    """A two-frame APNG whose acTL chunk claims `frames` frames."""
    from PIL import Image

    imgs = [Image.fromarray(np.full((side, side), v, np.uint8)) for v in (40, 200)]
    data = bytearray(encode(imgs[0], "PNG", save_all=True, append_images=imgs[1:]))
    actl = data.find(b"acTL")
    struct.pack_into(">I", data, actl + 4, frames)
    struct.pack_into(">I", data, actl + 12, zlib.crc32(bytes(data[actl: actl + 12])))
    return bytes(data)


def tiff_page_bomb(pages: int = 200_000, side: int = 128, page_side: int = 60_000) -> bytes:
    """A TIFF whose first page is a side x side gray image, chained to `pages` more IFDs that
    each declare page_side x page_side (and share one stub strip)."""
    def ifd(width: int, height: int, strip: int, next_at: int) -> bytes:
        tags = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1),
                (273, 4, strip), (277, 3, 1), (278, 4, height), (279, 4, side * side)]
        body = struct.pack("<H", len(tags)) + b"".join(
            struct.pack("<HHII", tag, kind, 1, value) if kind == 4 else struct.pack("<HHIHH", tag, kind, 1, value, 0)
            for tag, kind, value in tags)
        return body + struct.pack("<I", next_at)
    strip = 8
    first = 8 + side * side
    size = len(ifd(0, 0, 0, 0))
    out = [b"II*\x00" + struct.pack("<I", first), chest_like(side, side, bits=8).astype(np.uint8).tobytes()]
    for i in range(pages + 1):
        at = first + i * size
        nxt = at + size if i < pages else 0
        out.append(ifd(side, side, strip, nxt) if i == 0 else ifd(page_side, page_side, strip, nxt))
    return b"".join(out)


def webp_canvas_bomb(side: int = 12_000) -> bytes:
    """A small RGBA WebP whose VP8X chunk declares a side x side canvas (libwebp allocates the
    canvas when the file is opened)."""
    from PIL import Image

    data = bytearray(encode(Image.fromarray(np.full((64, 64, 4), 128, np.uint8)), "WEBP"))
    assert data[12:16] == b"VP8X"
    data[24:27] = (side - 1).to_bytes(3, "little")
    data[27:30] = (side - 1).to_bytes(3, "little")
    return bytes(data)


JPEG_BASELINE, JPEG_LS, JPEG_2000 = "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90"


def bombs() -> dict[str, Callable[[], bytes]]:
    """name -> builder of each decompression/declared-size bomb (each a few MB at most)."""
    return {
        "bomb-deflate-2GiB-phi.dcm": lambda: deflate_bomb_dicom(512, 512, 2048),
        "bomb-jpeg-sof-60000-phi.dcm": lambda: encapsulated_dicom(jpeg_declaring(60_000, 60_000), JPEG_BASELINE, 64, 64),
        "bomb-jpeg-sof-mismatch.dcm": lambda: encapsulated_dicom(jpeg_declaring(6_000, 6_000), JPEG_BASELINE, 64, 64),
        "bomb-jpegls-sof55-60000.dcm": lambda: encapsulated_dicom(jpeg_ls_declaring(60_000, 60_000), JPEG_LS, 64, 64),
        "bomb-j2k-siz-60000.dcm": lambda: encapsulated_dicom(j2k_declaring(60_000, 60_000), JPEG_2000, 64, 64),
        "bomb-png-50000x50000.png": lambda: png_header_only(50_000, 50_000),
        "bomb-apng-1M-frames.png": lambda: apng_frame_bomb(1_000_000),
        "bomb-tiff-50k-pages.tif": lambda: tiff_page_bomb(50_000),
        "bomb-webp-canvas-12000.webp": lambda: webp_canvas_bomb(12_000),
    }
