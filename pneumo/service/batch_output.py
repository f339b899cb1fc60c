"""Writing a batch's OUT file so that a failing disk loses no row: each row goes to the OS
unbuffered as it is made, fsynced every few rows; a write that fails (a full disk or any other
OSError) cuts the half-written row, fsyncs the complete ones and raises OutputError with one
line saying how many rows OUT holds and that --resume finishes the rest. And what OUT holds:
its columns, a row's cells, the header written anew or the complete rows kept for --resume."""
from __future__ import annotations

import csv
import errno
import io
import os
from pathlib import Path
from typing import Any

from pneumo.data.cohorts.manifest_csv import IMAGE_PATH
from pneumo.errors import ManifestError, PneumoError, one_line
from pneumo.inference.disclosure import shown
from pneumo.service.csv_safe import safe_cell

ROW = "row"
ADDED = ("probability", "label", "intended_use", "threshold", "band", "validity", "warnings", "error",
         "model_version", "batch_id")
FSYNC_EVERY = 8     # rows between fsyncs (each row reaches the OS at once, which survives a kill)


class OutputError(PneumoError):
    """OUT cannot be written: a folder, a parent that is a file, a full disk, no permission."""


_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def os_reason(err: OSError) -> str:
    code = errno.errorcode.get(err.errno or 0)
    text = err.strerror or str(err) or type(err).__name__
    return f"{text} ({code})" if code else text


def output_error(err: OSError, out: Path, written: int | None = None, left: int | None = None) -> OutputError:
    """One line for an OSError on OUT; with `written`, how far the batch got and how to finish it."""
    if err.errno in _FULL:
        head = f"the disk is full ({errno.errorcode.get(err.errno, 'ENOSPC')}) writing {out}"
    else:
        head = f"cannot write --out {out}: {os_reason(err)}"
    if written is None:
        return OutputError(one_line(head))
    rest = f" to score the other {left}" if left else ""
    return OutputError(one_line(f"{head}; {written} complete rows written, scoring stopped; "
                                 f"fix that, then run again with --resume{rest}"))


def open_rows(out: Path):
    """OUT for appending rows, unbuffered: each row reaches the OS (survives a kill) as it is written."""
    return open(out, "ab", buffering=0)


def _write_all(fh, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = fh.write(view)
        if not n:                          # a regular file that takes nothing: treat as full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[n:]


class RowWriter:
    """OUT's row writer: on any OSError it cuts the half-written row, fsyncs what is complete
    and raises OutputError saying how many rows OUT holds."""

    def __init__(self, out: Path, already: int, total: int):
        self.out, self.already, self.total = out, already, total
        self.written = 0                    # rows written by this run
        self.since_sync = 0
        try:
            self.fh = open_rows(out)
        except OSError as err:
            raise output_error(err, out) from None
        try:
            self.good = self.fh.seek(0, os.SEEK_END)   # end of the last complete row
        except OSError:
            self.good = None                # not seekable (a pipe): nothing to cut

    def write(self, line: bytes) -> None:
        try:
            _write_all(self.fh, line)
            self.since_sync += 1
            if self.since_sync >= FSYNC_EVERY:
                self._sync()
        except OSError as err:
            self._cut()
            done = self.already + self.written
            raise output_error(err, self.out, done, max(self.total - done, 0)) from None
        self.written += 1
        if self.good is not None:
            self.good += len(line)

    def _sync(self) -> None:
        self.since_sync = 0
        try:
            os.fsync(self.fh.fileno())
        except OSError as err:
            if err.errno in (errno.EINVAL, errno.EROFS, errno.ENOTSUP):   # a pipe or device: no fsync
                return
            raise

    def _cut(self) -> None:
        try:
            if self.good is not None:
                self.fh.truncate(self.good)
            os.fsync(self.fh.fileno())
        except OSError:
            pass                            # best effort; --resume cuts a torn line anyway

    def close(self) -> None:
        try:
            self._sync()
        except OSError:
            pass                            # an earlier write already reported the failure
        finally:
            self.fh.close()


# ---- what OUT holds --------------------------------------------------------------------------

def out_columns(header: list[str]) -> list[str]:
    """OUT's columns and the renaming of manifest columns that clash with ours (e.g. a ground-truth `label`)."""
    taken = {ROW, *ADDED}
    rename = {}
    for h in header:
        name = h
        while name in taken:
            name = "manifest_" + name
        rename[h] = name
        taken.add(name)
    return [ROW, *(rename[h] for h in header), *ADDED]


def out_cells(it, header: list[str], batch_id: str, allow_outside: bool = False) -> list[Any]:
    """One OUT row of a scored or failed row (pneumo.service.batch_rows' item)."""
    r = it.result
    if it.error is not None or r is None:
        added = ["", "", "", "", "", "", "", it.error or "no result", "", batch_id]
    else:
        model = getattr(r, "model", None) or {}
        use = getattr(r, "intended_use", "")
        label = shown(r, allow_outside).label or ""    # the one rule (pneumo.inference.disclosure)
        added = [f"{float(r.probability):.6f}", label, use, f"{float(r.threshold):.6f}",
                 getattr(r, "band", ""), getattr(r, "validity", ""),
                 "; ".join(one_line(w, 200) for w in (getattr(r, "warnings", None) or [])), "",
                 model.get("version", ""), batch_id]
    return [it.index, *(it.row.get(h, "") for h in header), *added]


def csv_line(cells: list[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(
        [safe_cell(" ".join(c.splitlines()) if isinstance(c, str) else c) for c in cells])
    return buf.getvalue()


def _recover(out: Path, columns: list[str]) -> tuple[set[tuple[int, str]], str | None]:
    """Keep OUT's complete rows, cut the rest (a torn last line); (done keys, batch id)."""
    data = out.read_bytes() if out.exists() else b""
    header_line = csv_line(columns).encode("utf-8")
    done: set[tuple[int, str]] = set()
    batch_id = None
    if not data.startswith(header_line):
        if not header_line.startswith(data):
            raise ManifestError(f"{out.name} was not written for this manifest (its columns differ); "
                                "give another --out or leave out --resume")
        out.write_bytes(header_line)      # empty or a torn header: start over
        return done, None
    keep = len(header_line)
    i_row, i_path, i_batch = 0, columns.index(IMAGE_PATH), columns.index("batch_id")
    while keep < len(data):
        end = data.find(b"\n", keep)
        if end < 0:
            break                         # torn last line: cut
        try:
            cells = next(csv.reader([data[keep:end].decode("utf-8")]))
            if len(cells) != len(columns):
                break
            done.add((int(cells[i_row]), cells[i_path]))
        except (UnicodeDecodeError, ValueError, csv.Error, StopIteration):
            break                         # a damaged line: it and anything after it are redone
        batch_id = batch_id or cells[i_batch] or None
        keep = end + 1
    if keep < len(data):
        with open(out, "r+b") as fh:
            fh.truncate(keep)
            os.fsync(fh.fileno())
    return done, batch_id


def start_out(out: Path, columns: list[str], resume: bool) -> tuple[set[tuple[int, str]], str | None]:
    """Make OUT ready (the header, or the complete rows of an earlier run); OutputError otherwise."""
    if out.is_dir():
        raise OutputError(f"--out {out} is a folder; give a file name")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputError(f"--out {out}: its folder cannot be made, a file is in the way") from None
    except OSError as err:
        raise output_error(err, out) from None
    try:
        if resume and out.exists() and not out.is_file():
            raise OutputError(f"--out {out} is not a regular file; --resume needs one")
        if resume:
            return _recover(out, columns)
        with open(out, "wb") as fh:
            fh.write(csv_line(columns).encode("utf-8"))
        return set(), None
    except OSError as err:
        raise output_error(err, out) from None


def scored_rows(out: Path, columns: list[str]) -> set[int]:
    """Row numbers of OUT's rows that were scored (an empty `error`), read after start_out kept
    only its complete rows; --resume logs those the case log lacks."""
    i_row, i_error = columns.index(ROW), columns.index("error")
    with open(out, newline="", encoding="utf-8") as fh:
        rows = csv.reader(fh)
        next(rows, None)
        return {int(cells[i_row]) for cells in rows if len(cells) == len(columns) and not cells[i_error]}
