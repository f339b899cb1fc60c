"""Writing a batch's OUT file so that a failing disk loses no row: each row goes to the OS
unbuffered as it is made, fsynced every few rows; a write that fails (a full disk or any other
OSError) cuts the half-written row, fsyncs the complete ones and raises OutputError with one
line saying how many rows OUT holds and that --resume finishes the rest."""
from __future__ import annotations

import errno
import os
from pathlib import Path

from pneumo.errors import PneumoError

FSYNC_EVERY = 8     # rows between fsyncs (each row reaches the OS at once, which survives a kill)


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
        return OutputError(_one_line(head))
    rest = f" to score the other {left}" if left else ""
    return OutputError(_one_line(f"{head}; {written} complete rows written, scoring stopped; "
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
