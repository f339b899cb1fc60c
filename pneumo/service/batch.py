"""Score a manifest CSV: `python -m pneumo batch MANIFEST.csv --out OUT.csv [--resume]`.

The manifest is read row by row (pneumo.data.cohorts.manifest_csv, the training cohort's reader
too) and every output row is written (and flushed) as soon as it is made, so a killed run loses
nothing: `--resume` keeps the complete rows of OUT, cuts a torn last line, and scores only the
rest. A write that fails (a full disk) stops the batch with one line saying how many complete rows
OUT holds; --resume finishes it. A bad row of any kind (a path outside the root, an unreadable or
refused image, an implausible lab value) gets its one-line reason in the `error` column; the
other rows are still scored. Cells are escaped against spreadsheet formula injection. Images are
decoded by two threads ahead of the model, which is called in chunks (predict_many) where the
predictor has it.

The parts: a row's reading and scoring in pneumo.service.batch_rows, OUT's columns and writing
in pneumo.service.batch_output; here the run that ties them together.
"""
from __future__ import annotations

import os
import sys
import time
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from pneumo.data.cohorts.manifest_csv import IMAGE_PATH, check_manifest, manifest_rows, read_header
from pneumo.errors import ManifestError, PneumoError
from pneumo.inference.case import Case, Result
from pneumo.inference.disclosure import as_asked
from pneumo.service.batch_output import (ADDED, ROW, OutputError, RowWriter, csv_line, out_cells, out_columns,
                                         scored_rows, start_out)
from pneumo.service.batch_rows import MAX_ERROR, _error_text, _Item, _lab_columns, _prepare, _score
from pneumo.service.case_log import CaseLogLocked, LogEntry
from pneumo.service.csv_safe import safe_cell

__all__ = ["ADDED", "MAX_ERROR", "ROW", "BatchSummary", "OutputError", "check_manifest", "read_header",
           "run_batch"]
CHUNK = 16          # model batch; with LOOKAHEAD it bounds how many full-size images are in memory
LOOKAHEAD = 8       # images decoded ahead of the model by the two worker threads
# A case log another writer holds past its busy timeout is tried again after each of these pauses
# (each try itself waits the busy timeout); then the batch goes on unlogged and --resume back-fills.
LOG_RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass
class BatchSummary:
    scored: int = 0
    errors: int = 0
    skipped_resumed: int = 0
    seconds: float = 0.0
    rows: int = 0                        # manifest data rows seen
    batch_id: str = ""
    out: Path | None = None
    log_error: str = ""                  # why the case log stopped taking rows ("" = every row logged)
    unlogged: int = 0                    # scored rows the case log did not take (--resume logs them)
    backfilled: int = 0                  # --resume: rows OUT had scored, logged now
    outputs_failed: int = 0              # scored rows whose on_case (e.g. --outputs) failed
    outputs_error: str = ""              # the first such failure, one line

    @property
    def cases_per_second(self) -> float:
        done = self.scored + self.errors
        return done / self.seconds if self.seconds > 0 else 0.0


class _Progress:
    """`\\r  123/624  41.2 cases/s` on a terminal, else a line every 50 rows."""

    def __init__(self, total: int, enabled: bool, stream=None):
        self.stream = stream or sys.stderr
        self.total, self.enabled = total, enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.monotonic()
        self.last = 0.0

    def update(self, done: int, scored: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        rate = scored / max(now - self.start, 1e-9)
        text = f"  {done}/{self.total}  {rate:.1f} cases/s"
        if self.tty and (now - self.last > 0.1 or done == self.total):
            self.stream.write("\r" + text)
            self.stream.flush()
            self.last = now
        elif not self.tty and (done % 50 == 0 or done == self.total):
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


# ---- the run ----------------------------------------------------------------------------

def _run_on_case(on_case, it: _Item, summary: BatchSummary) -> None:
    try:
        on_case(it.index, it.case, it.result, it.path)
    except Exception as err:   # noqa: BLE001 - one row's outputs never stop the batch
        summary.outputs_failed += 1
        summary.outputs_error = summary.outputs_error or _error_text(err)


def _record(log, entries: list[LogEntry]) -> None:
    """log.record_many(entries), tried again with back-off while another writer holds the log."""
    for delay in (*LOG_RETRY_DELAYS_S, None):
        try:
            log.record_many(entries)
            return
        except CaseLogLocked:
            if delay is None:
                raise
            time.sleep(delay)


def _unlogged(out: Path, columns: list[str], log, batch_id: str | None) -> set[int]:
    """Rows OUT holds as scored that the case log lacks (it was locked, full or off last time)."""
    if not batch_id or not hasattr(log, "batch_rows"):
        return set()
    try:
        logged = log.batch_rows(batch_id)
        return scored_rows(out, columns) - logged
    except (PneumoError, OSError, ValueError):
        return set()                      # the log cannot be read: the batch says so when it writes


def run_batch(manifest_csv: str | os.PathLike, out_csv: str | os.PathLike, *, root=None, predictor,
              resume: bool = False, log=None, progress: bool = True,
              on_row: Callable[[dict], None] | None = None, chunk_size: int = CHUNK,
              allow_outside: bool = False,
              on_case: Callable[[int, Case, Any, Path | None], None] | None = None, engine=None) -> BatchSummary:
    """Score every manifest row into OUT; see the module docstring. `on_row` gets each OUT row as a
    dict. allow_outside: give the label of cases outside the model's intended use too.
    on_case(row index, case, result, film path) runs for each scored row before its pixels are
    freed (the CLI's --outputs); its failure is counted in the summary, the row stays scored.
    engine: None (decode threads and `predictor` here) or one with scored_chunks(items, root,
    lab_cols, chunk_size), which prepares and scores elsewhere (pneumo.service.batch_ray; its rows
    come back without their pixels, so no on_case); OUT and the case log are written here either
    way, in manifest order."""
    t0 = time.monotonic()
    if engine is not None and on_case is not None:
        raise PneumoError("the standard outputs (--outputs) are written by the local engine only: "
                          "its rows keep their films; drop --engine ray or --outputs")
    manifest, out = Path(manifest_csv), Path(out_csv)
    header, total = check_manifest(manifest)     # limits checked before OUT is touched
    if out.exists() and out.resolve() == manifest.resolve():
        raise ManifestError("--out must not be the manifest itself")
    root = Path(root) if root is not None else manifest.resolve().parent
    if not root.is_dir():
        raise ManifestError(f"root folder not found: {root}")
    columns = out_columns(header)
    done, batch_id = start_out(out, columns, resume)
    summary = BatchSummary(batch_id=batch_id or uuid.uuid4().hex[:16], out=out)
    backfill = _unlogged(out, columns, log, batch_id) if resume and log is not None else set()
    logging_wanted = log is not None
    panel = getattr(predictor, "panel", None)
    lab_cols = _lab_columns(header, panel)
    bar = _Progress(total, progress)

    def todo() -> Iterator[_Item]:
        for index, row, extra in manifest_rows(manifest, header):
            summary.rows += 1
            if (index, str(safe_cell(" ".join(row[IMAGE_PATH].splitlines())))) in done:
                summary.skipped_resumed += 1
                bar.update(summary.skipped_resumed + summary.scored + summary.errors, summary.scored)
                if index in backfill:     # scored before, not logged: scored again for the log only
                    yield _Item(index, row, extra=extra, log_only=True)
                continue
            yield _Item(index, row, extra=extra)

    writer = RowWriter(out, len(done), total)
    rows = todo()

    def finish(chunk: list[_Item]) -> None:
        nonlocal log
        if engine is None:
            _score(chunk, predictor)
        for it in chunk:              # the request, recorded with each case: the CSV and the log agree
            if it.error is None and isinstance(it.result, Result):
                it.result = as_asked(it.result, allow_outside)
        entries = [LogEntry(it.result, it.labs, "batch", summary.batch_id, it.index)
                   for it in chunk if it.error is None and it.result is not None]
        if log is not None:           # logged before written: a row redone after a kill replaces its record
            try:
                _record(log, entries)
                summary.backfilled += sum(1 for it in chunk if it.log_only and it.result is not None
                                          and it.error is None)
            except (PneumoError, OSError) as err:   # the answers matter more than their record
                summary.log_error = _error_text(err)
                log = None
        if log is None and logging_wanted:
            summary.unlogged += len(entries)
        for it in chunk:
            if it.log_only:           # OUT has it already
                it.case = None
                continue
            cells = out_cells(it, header, summary.batch_id, allow_outside)
            writer.write(csv_line(cells).encode("utf-8"))
            if it.error is None and it.result is not None:
                summary.scored += 1
                if on_case is not None:
                    _run_on_case(on_case, it, summary)
            else:
                summary.errors += 1
            it.case = None            # free the pixels now
            bar.update(summary.skipped_resumed + summary.scored + summary.errors, summary.scored)
            if on_row is not None:
                on_row(dict(zip(columns, cells)))

    if engine is not None:
        try:
            for chunk in engine.scored_chunks(rows, root, lab_cols, chunk_size):
                finish(chunk)
        finally:
            writer.close()
            bar.close()
        summary.seconds = time.monotonic() - t0
        return summary
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pneumo-decode")
    pending: deque[Future] = deque()
    try:
        chunk: list[_Item] = []
        exhausted = False
        while True:
            while not exhausted and len(pending) < LOOKAHEAD + chunk_size - len(chunk):
                item = next(rows, None)
                if item is None:
                    exhausted = True
                else:
                    pending.append(pool.submit(_prepare, item, root, lab_cols, panel))
            if not pending:
                break
            chunk.append(pending.popleft().result())
            if len(chunk) >= chunk_size or (exhausted and not pending):
                finish(chunk)
                chunk = []
        if chunk:
            finish(chunk)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        writer.close()
        bar.close()
    summary.seconds = time.monotonic() - t0
    return summary
