"""Score a manifest CSV: `python -m pneumo batch MANIFEST.csv --out OUT.csv [--resume]`.

The manifest is read row by row and every output row is written (and flushed) as soon as it
is made, so a killed run loses nothing: `--resume` keeps the complete rows of OUT, cuts a
torn last line, and scores only the rest. A write that fails (a full disk, pneumo.service.batch_output)
stops the batch with one line saying how many complete rows OUT holds; --resume finishes it. A bad row of any kind (a path outside the root,
an unreadable or refused image, an implausible lab value) gets its one-line reason in the
`error` column; the other rows are still scored. Cells are escaped against spreadsheet
formula injection. Images are decoded by two threads ahead of the model, which is called
in chunks (predict_many) where the predictor has it.

Long by design: one batch run, from the manifest's checks to the last row (the OUT file's
writing is pneumo.service.batch_output).
"""
from __future__ import annotations

import csv
import io
import os
import sys
import time
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from pneumo import config
from pneumo.data.cohorts.manifest import resolve_inside
from pneumo.data.imaging import read_image
from pneumo.data.labs import parse_labs
from pneumo.errors import ManifestError, PneumoError
from pneumo.inference.case import Case
from pneumo.inference.intended_use import OUTSIDE, parse_age
from pneumo.service.batch_output import OutputError, RowWriter, output_error
from pneumo.service.case_log import LogEntry
from pneumo.service.csv_safe import safe_cell

ROW = "row"
IMAGE_PATH = "image_path"
AGE = "age"          # optional manifest column: the patient's age in years (judged, never written back)
ADDED = ("probability", "label", "intended_use", "threshold", "band", "validity", "warnings", "error",
         "model_version", "batch_id")
CHUNK = 16          # model batch; with LOOKAHEAD it bounds how many full-size images are in memory
LOOKAHEAD = 8       # images decoded ahead of the model by the two worker threads
MAX_ERROR = 300


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
    outputs_failed: int = 0              # scored rows whose on_case (e.g. --outputs) failed
    outputs_error: str = ""              # the first such failure, one line

    @property
    def cases_per_second(self) -> float:
        done = self.scored + self.errors
        return done / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Item:
    index: int
    row: dict[str, str]
    case: Any = None
    labs: Any = None
    error: str | None = None
    result: Any = None
    extra: list[str] = field(default_factory=list)
    path: Path | None = None              # the film, resolved inside the root (for on_case)


def _one_line(text: str, limit: int = MAX_ERROR) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error_text(err: BaseException) -> str:
    if isinstance(err, PneumoError):
        return _one_line(str(err))
    if isinstance(err, OSError):          # e.g. an image that cannot be opened: that row's error
        name = f" {Path(str(err.filename)).name}" if err.filename else ""
        return _one_line(f"cannot read{name}: {err.strerror or type(err).__name__}")
    if isinstance(err, MemoryError):
        return "not enough memory to read this row"
    return _one_line(f"internal error: {type(err).__name__}: {err}")


# ---- the manifest ----------------------------------------------------------------------

def _open_text(path: Path):
    try:
        return open(path, newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise ManifestError(f"manifest not found: {path}") from None
    except OSError as err:
        raise ManifestError(f"cannot read manifest {path.name}: {err.strerror or err}") from None


def _records(path: Path) -> Iterator[list[str]]:
    """csv records of the manifest, header first; blank lines skipped; one-line errors."""
    with _open_text(path) as fh:
        try:
            first = fh.readline()
            delim = max((",", ";", "\t"), key=first.count)
            fh.seek(0)
            for record in csv.reader(fh, delimiter=delim):
                if any(c.strip() for c in record):
                    yield record
        except UnicodeDecodeError:
            raise ManifestError(f"manifest {path.name} is not UTF-8 text") from None
        except csv.Error as err:
            raise ManifestError(f"manifest {path.name} is malformed: {err}") from None


def read_header(manifest: str | os.PathLike) -> list[str]:
    """The manifest's columns, checked: raises ManifestError for a file run_batch cannot use."""
    path = Path(manifest)
    header = next(_records(path), None)
    if header is None:
        raise ManifestError(f"manifest {path.name} is empty")
    header = [h.strip() for h in header]
    if len(header) > config.max_manifest_columns():
        raise ManifestError(f"manifest {path.name} has {len(header)} columns, more than "
                            f"{config.max_manifest_columns()} (PNEUMO_MAX_MANIFEST_COLUMNS)")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise ManifestError(f"manifest {path.name} repeats columns: {', '.join(dupes)}")
    if IMAGE_PATH not in header:
        raise ManifestError(f"manifest {path.name} has no '{IMAGE_PATH}' column")
    return header


def _manifest_rows(path: Path, header: list[str]) -> Iterator[tuple[int, dict[str, str], list[str]]]:
    """(1-based row number, {column: cell}, extra cells) for each data row."""
    records = _records(path)
    next(records)
    for index, record in enumerate(records, start=1):
        cells = record[: len(header)] + [""] * (len(header) - len(record))
        yield index, dict(zip(header, cells)), record[len(header):]


def _count_rows(path: Path, stop: int | None = None) -> int:
    """Data rows; counting stops past `stop`."""
    n = -1
    for _ in _records(path):
        n += 1
        if stop is not None and n > stop:
            break
    return max(n, 0)


def check_manifest(manifest: str | os.PathLike) -> tuple[list[str], int]:
    """(columns, data rows) of a manifest run_batch can use; ManifestError (one line) otherwise,
    also for one over the size limits (PNEUMO_MAX_MANIFEST_ROWS / _COLUMNS), before any scoring."""
    path = Path(manifest)
    header = read_header(path)
    limit = config.max_manifest_rows()
    rows = _count_rows(path, stop=limit)
    if rows > limit:
        raise ManifestError(f"manifest {path.name} has more than {limit} rows (PNEUMO_MAX_MANIFEST_ROWS); "
                            "split it into smaller batches")
    return header, rows


def _out_columns(header: list[str]) -> list[str]:
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


# ---- per row: path, image, labs ---------------------------------------------------------

def _lab_columns(header: list[str], panel) -> list[str]:
    """Manifest columns that name a panel test (key, name, alias, LOINC, or 'name [unit]')."""
    if panel is None:
        return []

    return [h for h in header if h not in (IMAGE_PATH, AGE)
            and not parse_labs({h: None}, panel, fmt="dict").unknown]


def _read_labs(row: dict[str, str], lab_cols: list[str], panel):
    given = {c: row[c] for c in lab_cols if (row.get(c) or "").strip()}
    if not given:
        return None                       # no labs for this row: an image-only case

    reading = parse_labs(given, panel, fmt="dict")
    reading.raise_for_errors()
    return None if all(v is None for v in reading.values.values()) else reading


def _prepare(item: _Item, root: Path, lab_cols: list[str], panel) -> _Item:
    """Runs in a worker thread: everything before the model, errors kept on the item."""
    try:
        if item.extra:
            raise ManifestError(f"row has {len(item.extra)} more cells than the header")
        rel = (item.row.get(IMAGE_PATH) or "").strip()
        labs = _read_labs(item.row, lab_cols, panel)
        age = parse_age(item.row.get(AGE))
        item.path = resolve_inside(root, rel) if rel else None
        image = read_image(item.path) if rel else None
        if image is None and labs is None:
            raise ManifestError("row has no image_path and no lab values")
        item.case, item.labs = Case(image=image, labs=labs, age_years=age), labs
    except Exception as err:  # noqa: BLE001 - a bad row of any kind is that row's error
        item.error = _error_text(err)
    return item


# ---- the output file --------------------------------------------------------------------

def _csv_line(cells: list[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(
        [safe_cell(" ".join(c.splitlines()) if isinstance(c, str) else c) for c in cells])
    return buf.getvalue()


def _recover(out: Path, columns: list[str]) -> tuple[set[tuple[int, str]], str | None]:
    """Keep OUT's complete rows, cut the rest (a torn last line); (done keys, batch id)."""
    data = out.read_bytes() if out.exists() else b""
    header_line = _csv_line(columns).encode("utf-8")
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


def _start_out(out: Path, columns: list[str], resume: bool) -> tuple[set[tuple[int, str]], str | None]:
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
            fh.write(_csv_line(columns).encode("utf-8"))
        return set(), None
    except OSError as err:
        raise output_error(err, out) from None


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

def _score(items: list[_Item], predictor) -> None:
    """Results onto the items: one predict_many call, or one predict per case to isolate a bad one."""
    ready = [it for it in items if it.case is not None]
    if not ready:
        return
    if hasattr(predictor, "predict_many") and len(ready) > 1:
        try:
            results = list(predictor.predict_many([it.case for it in ready]))
            if len(results) == len(ready):
                for it, res in zip(ready, results):   # a refused case comes back as its error
                    if isinstance(res, BaseException):
                        it.error = _error_text(res)
                    else:
                        it.result = res
                return
        except Exception:  # noqa: BLE001 - some case in the chunk is bad: find which, below
            pass
    for it in ready:
        try:
            it.result = predictor.predict(it.case)
        except Exception as err:  # noqa: BLE001 - that row's error
            it.error = _error_text(err)


def _out_cells(it: _Item, header: list[str], batch_id: str, allow_outside: bool = False) -> list[Any]:
    r = it.result
    if it.error is not None or r is None:
        added = ["", "", "", "", "", "", "", it.error or "no result", "", batch_id]
    else:
        model = getattr(r, "model", None) or {}
        use = getattr(r, "intended_use", "")
        label = r.label if allow_outside or use != OUTSIDE else ""   # outside: no label unless asked
        added = [f"{float(r.probability):.6f}", label, use, f"{float(r.threshold):.6f}",
                 getattr(r, "band", ""), getattr(r, "validity", ""),
                 "; ".join(_one_line(w, 200) for w in (getattr(r, "warnings", None) or [])), "",
                 model.get("version", ""), batch_id]
    return [it.index, *(it.row.get(h, "") for h in header), *added]


def _run_on_case(on_case, it: _Item, summary: BatchSummary) -> None:
    try:
        on_case(it.index, it.case, it.result, it.path)
    except (PneumoError, OSError) as err:
        summary.outputs_failed += 1
        summary.outputs_error = summary.outputs_error or _error_text(err)


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
    columns = _out_columns(header)
    done, batch_id = _start_out(out, columns, resume)
    summary = BatchSummary(batch_id=batch_id or uuid.uuid4().hex[:16], out=out)
    panel = getattr(predictor, "panel", None)
    lab_cols = _lab_columns(header, panel)
    bar = _Progress(total, progress)

    def todo() -> Iterator[_Item]:
        for index, row, extra in _manifest_rows(manifest, header):
            summary.rows += 1
            if (index, str(safe_cell(" ".join(row[IMAGE_PATH].splitlines())))) in done:
                summary.skipped_resumed += 1
                bar.update(summary.skipped_resumed + summary.scored + summary.errors, summary.scored)
                continue
            yield _Item(index, row, extra=extra)

    writer = RowWriter(out, len(done), total)
    rows = todo()

    def finish(chunk: list[_Item]) -> None:
        nonlocal log
        if engine is None:
            _score(chunk, predictor)
        if log is not None:           # logged before written: a row redone after a kill replaces its record
            entries = [LogEntry(it.result, it.labs, "batch", summary.batch_id, it.index)
                       for it in chunk if it.error is None and it.result is not None]
            try:
                log.record_many(entries)
            except (PneumoError, OSError) as err:   # the answers matter more than their record
                summary.log_error = _error_text(err)
                log = None
        for it in chunk:
            cells = _out_cells(it, header, summary.batch_id, allow_outside)
            writer.write(_csv_line(cells).encode("utf-8"))
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
