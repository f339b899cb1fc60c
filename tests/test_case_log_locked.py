"""Issue 28: a case log another writer holds past the busy timeout no longer stops the batch's
logging for good (its rows are tried again with back-off), and `--resume` logs the rows OUT holds
as scored that the log lacks. The log's timings are scaled down (busy timeout 0.1 s) to keep it quick."""
from __future__ import annotations

import sqlite3
import threading

import pytest

import pneumo.service.batch as batch
import pneumo.service.case_log as case_log
from pneumo.service.batch import run_batch
from pneumo.service.case_log import CaseLog
from tests.test_batch import FakePredictor, read_out, write_manifest, write_png

N_ROWS, CHUNK = 24, 4


@pytest.fixture
def quick_lock(monkeypatch):
    monkeypatch.setattr(case_log, "BUSY_TIMEOUT_MS", 100)
    monkeypatch.setattr(batch, "LOG_RETRY_DELAYS_S", (0.1, 0.2, 0.4, 0.8), raising=False)


@pytest.fixture
def manifest(tmp_path):
    rows = []
    for i in range(N_ROWS):
        write_png(tmp_path / "films" / f"{i}.png", i)
        rows.append({"image_path": f"{i}.png"})
    rows[9] = {"image_path": "missing.png"}           # an error row: never logged
    write_manifest(tmp_path / "films" / "manifest.csv", rows)
    return tmp_path / "films" / "manifest.csv"


class Holder:
    """Another process's writer: takes the log's write lock and keeps it until released."""

    def __init__(self, path):
        self.path, self.taken, self.release = path, threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self):
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        self.taken.set()
        self.release.wait(30)
        conn.execute("COMMIT")
        conn.close()

    def start(self):
        self.thread.start()
        assert self.taken.wait(10)


def _lock_after_first_chunk(holder, seconds=None):
    def on_row(row):
        if row["row"] == CHUNK and not holder.taken.is_set():
            holder.start()
            if seconds is not None:
                threading.Timer(seconds, holder.release.set).start()
    return on_row


def test_a_log_locked_past_its_busy_timeout_keeps_logging(manifest, tmp_path, quick_lock):
    log = CaseLog(tmp_path / "home" / "cases.sqlite")
    holder = Holder(log.path)
    s = run_batch(manifest, tmp_path / "out.csv", predictor=FakePredictor(), log=log, progress=False,
                  chunk_size=CHUNK, on_row=_lock_after_first_chunk(holder, seconds=1.2))
    holder.release.set()
    assert holder.taken.is_set()
    scored = {int(r["row"]) for r in read_out(tmp_path / "out.csv") if not r["error"]}
    assert s.log_error == "" and len(scored) == N_ROWS - 1
    assert log.batch_rows(s.batch_id) == scored                # the locked chunk and every later one


def test_resume_logs_the_rows_scored_but_not_logged(manifest, tmp_path, quick_lock):
    log = CaseLog(tmp_path / "home" / "cases.sqlite")
    out = tmp_path / "out.csv"
    holder = Holder(log.path)
    s = run_batch(manifest, out, predictor=FakePredictor(), log=log, progress=False, chunk_size=CHUNK,
                  on_row=_lock_after_first_chunk(holder))       # held until the batch is over
    holder.release.set()
    holder.thread.join(10)
    scored = {int(r["row"]) for r in read_out(out) if not r["error"]}
    assert "locked" in s.log_error and s.scored == N_ROWS - 1
    assert log.batch_rows(s.batch_id) == set(range(1, CHUNK + 1))
    assert s.unlogged == len(scored) - CHUNK
    before = out.read_bytes()

    again = run_batch(manifest, out, predictor=FakePredictor(), log=log, progress=False, chunk_size=CHUNK,
                      resume=True)
    assert again.batch_id == s.batch_id and again.scored == again.errors == 0
    assert again.backfilled == len(scored) - CHUNK and again.log_error == ""
    assert log.batch_rows(s.batch_id) == scored and log.count() == len(scored)
    assert out.read_bytes() == before                          # OUT is not written twice
    third = run_batch(manifest, out, predictor=FakePredictor(), log=log, progress=False, resume=True)
    assert third.backfilled == 0 and log.count() == len(scored)


def test_a_full_disk_is_not_retried(manifest, tmp_path, quick_lock):
    from pneumo.errors import PneumoError

    class FullLog:
        calls = 0

        def record_many(self, entries):
            self.calls += 1
            raise PneumoError("cannot write the case log: database or disk is full")

    log = FullLog()
    s = run_batch(manifest, tmp_path / "o.csv", predictor=FakePredictor(), log=log, progress=False,
                  chunk_size=CHUNK)
    assert log.calls == 1 and "disk is full" in s.log_error and s.unlogged == N_ROWS - 1
