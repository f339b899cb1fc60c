"""The one reader of a manifest CSV, behind both the training cohort (cohorts.manifest.load) and
the batch (pneumo.service.batch): UTF-8 (a BOM is dropped), the delimiter sniffed from the header
(`,` `;` or tab), blank lines skipped, rows streamed so a large file is never held whole, and
every problem with the file itself a ManifestError of one line."""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Iterator

from pneumo import config
from pneumo.errors import ManifestError

IMAGE_PATH = "image_path"
DELIMITERS = (",", ";", "\t")


def _open_text(path: Path):
    try:
        return open(path, newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise ManifestError(f"manifest not found: {path}") from None
    except OSError as err:
        raise ManifestError(f"cannot read manifest {path.name}: {err.strerror or err}") from None


def records(path: str | os.PathLike) -> Iterator[list[str]]:
    """csv records of the manifest, header first; blank lines skipped; one-line errors."""
    path = Path(path)
    with _open_text(path) as fh:
        try:
            first = fh.readline()
            delim = max(DELIMITERS, key=first.count)
            fh.seek(0)
            for record in csv.reader(fh, delimiter=delim):
                if any(c.strip() for c in record):
                    yield record
        except UnicodeDecodeError:
            raise ManifestError(f"manifest {path.name} is not UTF-8 text") from None
        except csv.Error as err:
            raise ManifestError(f"manifest {path.name} is malformed: {err}") from None


def read_header(manifest: str | os.PathLike) -> list[str]:
    """The manifest's columns, checked: ManifestError for a file that cannot be used."""
    path = Path(manifest)
    header = next(records(path), None)
    if header is None:
        raise ManifestError(f"cannot read manifest {path.name}: it is empty")
    header = [h.strip() for h in header]
    if len(header) > config.max_manifest_columns():
        raise ManifestError(f"manifest {path.name} has {len(header)} columns, more than "
                            f"{config.max_manifest_columns()} (PNEUMO_MAX_MANIFEST_COLUMNS)")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise ManifestError(f"manifest {path.name} repeats columns: {', '.join(dupes)}")
    if IMAGE_PATH not in header:
        raise ManifestError(f"manifest {path.name} has no {IMAGE_PATH} column: no '{IMAGE_PATH}' among {header[:10]}")
    return header


def manifest_rows(path: str | os.PathLike, header: list[str]) -> Iterator[tuple[int, dict[str, str], list[str]]]:
    """(1-based row number, {column: cell}, cells beyond the header) for each data row; a short
    row is padded with empty cells."""
    rows = records(path)
    next(rows)
    for index, record in enumerate(rows, start=1):
        cells = record[: len(header)] + [""] * (len(header) - len(record))
        yield index, dict(zip(header, cells)), record[len(header):]


def count_rows(path: str | os.PathLike, stop: int | None = None) -> int:
    """Data rows; counting stops past `stop`."""
    n = -1
    for _ in records(path):
        n += 1
        if stop is not None and n > stop:
            break
    return max(n, 0)


def check_manifest(manifest: str | os.PathLike) -> tuple[list[str], int]:
    """(columns, data rows) of a usable manifest; ManifestError (one line) otherwise, also for
    one over the size limits (PNEUMO_MAX_MANIFEST_ROWS / _COLUMNS), before anything is read for use."""
    path = Path(manifest)
    header = read_header(path)
    limit = config.max_manifest_rows()
    rows = count_rows(path, stop=limit)
    if rows > limit:
        raise ManifestError(f"manifest {path.name} has more than {limit} rows (PNEUMO_MAX_MANIFEST_ROWS); "
                            "split it into smaller batches")
    return header, rows
