"""Files a web user hands over, taken safely: zip members checked before anything is written
(names, counts, inflated sizes), plain file names, spreadsheet-safe CSV downloads."""
from __future__ import annotations

import io
import re
import shutil
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pandas as pd

from pneumo import config
from pneumo.errors import PneumoError
from pneumo.service.csv_safe import write_safe_csv


def safe_member(name: str) -> PurePosixPath | None:
    """A zip member name as a relative path, or None when it is absolute or climbs out ('..')."""
    norm = name.replace("\\", "/")
    path = PurePosixPath(norm)
    if not norm or norm.startswith("/") or re.match(r"^[A-Za-z]:", norm) or ".." in path.parts:
        return None
    return path


class UploadError(PneumoError):
    """An upload refused as a whole (too many files, not a zip, a corrupt member); one line."""


MAX_MEMBER_NAME_BYTES = 255


def extract_zip(data: bytes, dest: Path, *, max_bytes: int = 500_000_000, max_entries: int = 10_000,
                name: str = "the archive") -> tuple[int, list[str]]:
    """Extract a zip into dest, skipping members with absolute paths or '..'.
    Returns (files extracted, refused member names). Raises UploadError, with one readable line,
    for what is not a zip, more than `max_entries` members, more than `max_bytes` inflated, a
    member name over 255 bytes, or a member that cannot be read back (bad CRC, encrypted,
    truncated). Members extracted before such a failure stay in dest."""
    return _extract_zip(data, dest, max_bytes, max_entries, name, [])


def _extract_zip(data, dest, max_bytes, max_entries, name, written: list[int]) -> tuple[int, list[str]]:
    dest = Path(dest).resolve()
    refused, n, total = [], 0, 0
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise UploadError(f"{name} is not a readable zip archive") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > max_entries:
            raise UploadError(f"{name} has {len(infos)} entries; at most {max_entries} are accepted")
        for info in infos:
            if len(info.filename.encode("utf-8", "surrogateescape")) > MAX_MEMBER_NAME_BYTES:
                raise UploadError(f"{name} has a member name longer than {MAX_MEMBER_NAME_BYTES} bytes")
        if sum(i.file_size for i in infos if not i.is_dir()) > max_bytes:  # a zip bomb: refuse before writing
            raise UploadError(f"{name} inflates to more than {max_bytes / 1e6:.0f} MB, the limit for one batch")
        for info in infos:
            rel = safe_member(info.filename)
            target = (dest / rel).resolve() if rel is not None else None
            if target is None or not target.is_relative_to(dest):
                refused.append(info.filename)
                continue
            if info.is_dir():
                continue
            total += info.file_size
            if total > max_bytes:
                raise UploadError(f"{name} inflates to more than {max_bytes / 1e6:.0f} MB, the limit for one batch")
            if _clashes(dest, target):
                raise UploadError(f"{name}: member {info.filename!r} clashes with another member "
                                  "(a file and a folder of the same name)")
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)   # ZipExtFile stops at file_size, checks the CRC
            except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError, OSError,
                    ValueError) as err:
                _remove_partial(target)
                what = "has a bad CRC" if "CRC" in str(err) else "cannot be read"
                if "encrypt" in str(err).lower():
                    what = "is encrypted"
                raise UploadError(f"{name}: member {info.filename!r} {what}") from None
            n += 1
            written.append(info.file_size)
    return n, refused


def _clashes(dest: Path, target: Path) -> bool:
    """Whether writing `target` meets a file where a folder must be (`a` then `a/b.dcm`) or a
    folder where the file goes (`a/b.dcm` then `a`)."""
    if target.is_dir():
        return True
    parent = target.parent
    while parent != dest and parent.is_relative_to(dest):
        if parent.exists() and not parent.is_dir():
            return True
        parent = parent.parent
    return False


def _remove_partial(target: Path) -> None:
    """Remove a member written in part; what is not a file of ours (a folder, a path under a file) stays."""
    try:
        if target.is_file():
            target.unlink()
    except OSError:
        pass


def safe_filename(name: str) -> str:
    """An uploaded file's base name, stripped of folders and odd characters."""
    base = PurePosixPath(name.replace("\\", "/")).name
    base = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")
    return base or "upload"


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """CSV for download, with formula-like cells escaped (a spreadsheet will open it)."""
    return write_safe_csv(frame).encode("utf-8")


def save_uploads(files: list[tuple[str, bytes]], dest: Path) -> list[str]:
    """Write uploaded (name, bytes) into dest: zips are extracted safely, other files by their
    base name only. Returns the refused archive members; raises the first UploadError."""
    outcome = unpack_uploads(files, dest)
    if outcome.problems:
        raise UploadError(outcome.problems[0])
    return outcome.refused


@dataclass
class UploadOutcome:
    files: int = 0                                        # files written into dest
    refused: list[str] = field(default_factory=list)      # archive members skipped (unsafe paths)
    problems: list[str] = field(default_factory=list)     # one line per upload that was refused


def unpack_uploads(files: list[tuple[str, bytes]], dest: Path, *, max_files: int | None = None,
                   max_entries: int | None = None, max_bytes: int | None = None) -> UploadOutcome:
    """save_uploads with the batch limits (config.max_upload_files / max_zip_entries /
    max_batch_bytes by default) shared by every file of one upload, and no exception: a refused
    upload is one line in .problems and the other files are still written."""
    max_files = config.max_upload_files() if max_files is None else max_files
    entries_left = config.max_zip_entries() if max_entries is None else max_entries
    bytes_left = config.max_batch_bytes() if max_bytes is None else max_bytes
    out = UploadOutcome()
    if len(files) > max_files:
        out.problems.append(f"{len(files)} files in one upload; at most {max_files} are accepted "
                            "(put them in a zip)")
        return out
    dest = Path(dest)
    for name, data in files:
        try:
            if name.lower().endswith(".zip"):
                written: list[int] = []
                try:
                    n, refused = _extract_zip(data, dest, bytes_left, entries_left, safe_filename(name), written)
                finally:
                    out.files += len(written)
                    bytes_left -= sum(written)
                out.refused += refused
                entries_left -= n + len(refused)
            else:
                if len(data) > bytes_left:
                    raise UploadError(f"{safe_filename(name)} goes past the size limit for one batch")
                try:
                    (dest / safe_filename(name)).write_bytes(data)
                except IsADirectoryError:     # a zip of this upload made a folder of that name
                    raise UploadError(f"{safe_filename(name)} clashes with a folder of the same name "
                                      "from an archive of this upload") from None
                except OSError as err:
                    raise UploadError(f"{safe_filename(name)} cannot be saved: "
                                      f"{err.strerror or type(err).__name__}") from None
                out.files += 1
                bytes_left -= len(data)
        except UploadError as err:
            out.problems.append(str(err))
    return out


def count_rows(csv_path: Path) -> int:
    """Data rows of a CSV (for a progress bar; quoted newlines make it an estimate)."""
    with open(csv_path, "rb") as fh:
        return max(sum(1 for line in fh if line.strip()) - 1, 0)
