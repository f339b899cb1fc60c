"""Issue 16: failures around a batch give one readable line and lose no row. Each test builds
its hostile condition itself: a disk that fills up after N rows (the row writer's file object
raises ENOSPC, and /dev/full for real), an unwritable PNEUMO_HOME (a path under a regular file:
ENOTDIR even for root), an --out that is a folder or under a file, manifests over the size
limits, a 5,000-digit lab value. A fake predictor stands in for the model."""
from __future__ import annotations

import errno
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

import pneumo.inference.native_stderr
import pneumo.service.batch as batch
import pneumo.service.batch_output as batch_output
from pneumo import config
from pneumo.cli import batch as batch_cli
from pneumo.cli import main as cli
from pneumo.errors import ManifestError, PneumoError
from pneumo.service.batch import OutputError, run_batch
from pneumo.service.case_log import CaseLog, record_or_warn
from tests.test_batch import FakePredictor, FakeResult, read_out, write_manifest, write_png

N_ROWS = 12


@pytest.fixture
def fake_model(monkeypatch):
    """`python -m pneumo batch` loads this instead of the shipped model; counts the loads."""
    loads = []

    def load(bundle_dir=None):
        loads.append(bundle_dir)
        return FakePredictor()

    monkeypatch.setattr(batch_cli, "Predictor", SimpleNamespace(load=load))
    return loads


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PNEUMO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def manifest(tmp_path):
    root = tmp_path / "data"
    for i in range(N_ROWS):
        write_png(root / f"c{i}.png", i, size=64)
    path = root / "manifest.csv"
    write_manifest(path, [{"image_path": f"c{i}.png", "case": f"A{i}", "wbc": "7.5"} for i in range(N_ROWS)])
    return path


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


class FullDisk:
    """The row writer's file object, on a disk with room for `room` more rows: the next write
    gets half its bytes onto the disk, then every write raises `code` (ENOSPC by default)."""

    def __init__(self, fh, room: int, code: int = errno.ENOSPC):
        self.fh, self.room, self.code, self.torn = fh, room, code, False

    def write(self, data):
        if self.room > 0:
            self.room -= 1
            return self.fh.write(data)
        if not self.torn:
            self.torn = True
            return self.fh.write(bytes(data[: len(data) // 2]))
        raise OSError(self.code, os.strerror(self.code))

    def __getattr__(self, name):
        return getattr(self.fh, name)


def fill_disk_after(monkeypatch, room: int, code: int = errno.ENOSPC) -> None:
    real = batch_output.open_rows
    monkeypatch.setattr(batch_output, "open_rows", lambda out: FullDisk(real(out), room, code))


# ---- 1. a full disk while writing OUT ------------------------------------------------------

def test_full_disk_keeps_the_written_rows_and_resume_finishes(manifest, tmp_path, home, fake_model,
                                                              monkeypatch, capsys):
    full, out = tmp_path / "full.csv", tmp_path / "out.csv"
    strip = lambda r: {k: v for k, v in r.items() if k != "batch_id"}  # noqa: E731
    assert cli.main(["batch", str(manifest), "--out", str(full), "--quiet", "--no-log"]) == 0
    capsys.readouterr()
    real = batch_output.open_rows
    fill_disk_after(monkeypatch, 5)
    assert cli.main(["batch", str(manifest), "--out", str(out), "--quiet"]) == 2
    err = one_line(capsys.readouterr().err)
    assert err.startswith("error: the disk is full (ENOSPC)") and "5 complete rows written" in err
    assert "scoring stopped" in err and "--resume" in err and "other 7" in err
    assert out.read_bytes().endswith(b"\n") and len(lines_of(out)) == 6     # header + 5, no torn sixth
    assert [strip(r) for r in read_out(out)] == [strip(r) for r in read_out(full)[:5]]
    monkeypatch.setattr(batch_output, "open_rows", real)                         # space freed
    assert cli.main(["batch", str(manifest), "--out", str(out), "--quiet", "--resume"]) == 0
    assert "5 already done" in capsys.readouterr().err
    got = read_out(out)
    assert [strip(r) for r in got] == [strip(r) for r in read_out(full)]       # every row once, in order
    assert len({r["batch_id"] for r in got}) == 1
    log = CaseLog()
    assert log.batch_rows(got[0]["batch_id"]) == set(range(1, N_ROWS + 1))    # each logged once


def test_full_disk_in_the_library_is_an_output_error(manifest, tmp_path, monkeypatch):
    fill_disk_after(monkeypatch, 0)
    out = tmp_path / "o.csv"
    with pytest.raises(OutputError, match=r"ENOSPC.*0 complete rows"):
        run_batch(manifest, out, predictor=FakePredictor(), progress=False)
    assert len(lines_of(out)) == 1                                            # the header only


def test_a_real_full_device_for_the_header(manifest, fake_model, home, capsys):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    assert batch_cli.main([str(manifest), "--out", "/dev/full", "--quiet", "--no-log"]) == 2
    assert "the disk is full (ENOSPC) writing /dev/full" in one_line(capsys.readouterr().err)


# ---- 2. an unwritable PNEUMO_HOME: the answer still comes, one line says it was not logged ---

@pytest.fixture
def bad_home(tmp_path, monkeypatch):
    blocker = tmp_path / "x" / "file.txt"
    blocker.parent.mkdir()
    blocker.write_text("not a folder")
    monkeypatch.setenv("PNEUMO_HOME", str(blocker / "sub"))
    return blocker / "sub"


def test_unwritable_home_is_one_typed_line(bad_home, tmp_path):
    with pytest.raises(PneumoError, match="PNEUMO_HOME .* cannot be created: a file is in the way"):
        config.home_dir()
    with pytest.raises(PneumoError, match="cannot create the case log's folder"):
        CaseLog(tmp_path / "x" / "file.txt" / "deeper" / "cases.sqlite")


def test_predict_answer_survives_an_unwritable_home(bad_home, capsys):
    result = FakeResult(0.7, "PNEUMONIA")
    assert record_or_warn(result, labs={"wbc": 12.0}, origin="cli") is False
    err = one_line(capsys.readouterr().err)
    assert err.startswith("warning: this case was not logged:") and "PNEUMO_HOME" in err


def test_batch_scores_every_row_with_an_unwritable_home(manifest, tmp_path, bad_home, fake_model, capsys):
    out = tmp_path / "o.csv"
    assert batch_cli.main([str(manifest), "--out", str(out), "--quiet"]) == 0
    warning, summary = capsys.readouterr().err.splitlines()
    assert warning.startswith("warning: this batch is not logged: PNEUMO_HOME")
    assert summary.startswith(f"scored {N_ROWS}, errors 0")
    assert len(read_out(out)) == N_ROWS and not bad_home.exists()


def test_a_log_that_fails_mid_batch_loses_no_row(manifest, tmp_path):
    class BrokenLog:
        calls = 0

        def record_many(self, entries):
            self.calls += 1
            raise PneumoError("cannot write the case log: database or disk is full")

    log = BrokenLog()
    s = run_batch(manifest, tmp_path / "o.csv", predictor=FakePredictor(), log=log, progress=False,
                  chunk_size=4)
    assert s.scored == N_ROWS and len(read_out(tmp_path / "o.csv")) == N_ROWS
    assert log.calls == 1 and "disk is full" in s.log_error                 # tried once, then not again


# ---- 3. other OSErrors on the output path ---------------------------------------------------

@pytest.mark.parametrize("kind", ["folder", "under a file", "folder with resume"])
def test_bad_out_paths_are_one_line(kind, manifest, tmp_path, home, fake_model, capsys):
    folder = tmp_path / "a folder"
    folder.mkdir()
    blocker = tmp_path / "plain.txt"
    blocker.write_text("x")
    out, extra, want = {
        "folder": (folder, [], "is a folder"),
        "under a file": (blocker / "sub" / "o.csv", [], "a file is in the way"),
        "folder with resume": (folder, ["--resume"], "is a folder"),
    }[kind]
    assert batch_cli.main([str(manifest), "--out", str(out), "--quiet", *extra]) == 2
    err = one_line(capsys.readouterr().err)
    assert err.startswith("error: --out") and want in err
    assert blocker.read_text() == "x" and list(folder.iterdir()) == []


def test_other_write_errors_mid_batch_say_how_far_it_got(manifest, tmp_path, home, fake_model,
                                                         monkeypatch, capsys):
    fill_disk_after(monkeypatch, 3, errno.EIO)
    out = tmp_path / "o.csv"
    assert batch_cli.main([str(manifest), "--out", str(out), "--quiet"]) == 2
    err = one_line(capsys.readouterr().err)
    assert "cannot write --out" in err and "(EIO)" in err and "3 complete rows written" in err
    assert len(read_out(out)) == 3


# ---- 4. manifest size limits ----------------------------------------------------------------

def test_too_many_rows_refused_up_front(manifest, tmp_path, home, fake_model, monkeypatch, capsys):
    monkeypatch.setenv("PNEUMO_MAX_MANIFEST_ROWS", str(N_ROWS - 1))
    out = tmp_path / "o.csv"
    assert batch_cli.main([str(manifest), "--out", str(out), "--quiet"]) == 2
    err = one_line(capsys.readouterr().err)
    assert f"more than {N_ROWS - 1} rows (PNEUMO_MAX_MANIFEST_ROWS)" in err
    assert fake_model == [] and not out.exists()                 # before the model loads, OUT untouched
    with pytest.raises(ManifestError, match="PNEUMO_MAX_MANIFEST_ROWS"):
        run_batch(manifest, out, predictor=FakePredictor(), progress=False)
    assert not out.exists()
    monkeypatch.setenv("PNEUMO_MAX_MANIFEST_ROWS", str(N_ROWS))  # exactly at the limit: fine
    assert run_batch(manifest, out, predictor=FakePredictor(), progress=False).scored == N_ROWS


def test_too_many_columns_refused_up_front(manifest, tmp_path, home, fake_model, monkeypatch, capsys):
    monkeypatch.setenv("PNEUMO_MAX_MANIFEST_COLUMNS", "2")       # the manifest has 3
    assert batch_cli.main([str(manifest), "--out", str(tmp_path / "o.csv"), "--quiet"]) == 2
    err = one_line(capsys.readouterr().err)
    assert "has 3 columns, more than 2 (PNEUMO_MAX_MANIFEST_COLUMNS)" in err and fake_model == []
    monkeypatch.setenv("PNEUMO_MAX_MANIFEST_COLUMNS", "not a number")   # malformed: the default, not no limit
    assert config.max_manifest_columns() == 200 and config.max_manifest_rows() == 100_000


# ---- 5. a 5,000-digit lab value is that row's error -----------------------------------------

def test_a_5000_digit_lab_value_is_a_row_error(tmp_path, home, fake_model, capsys):
    for i in range(3):
        write_png(tmp_path / f"{i}.png", i, size=64)
    write_manifest(tmp_path / "m.csv", [{"image_path": "0.png", "wbc": "7"},
                                        {"image_path": "1.png", "wbc": "9" * 5000},
                                        {"image_path": "2.png", "wbc": "8"}])
    out = tmp_path / "o.csv"
    assert cli.main(["batch", str(tmp_path / "m.csv"), "--out", str(out), "--quiet"]) == 0
    assert capsys.readouterr().err.startswith("scored 2, errors 1")
    got = read_out(out)
    assert [bool(r["error"]) for r in got] == [False, True, False]
    assert got[1]["error"].startswith("wbc") and "internal error" not in got[1]["error"]
    assert len(got[1]["error"]) <= batch.MAX_ERROR and got[1]["probability"] == ""


def test_bad_home_and_bad_out_is_still_one_line(manifest, tmp_path, bad_home, fake_model, capsys):
    assert batch_cli.main([str(manifest), "--out", str(tmp_path), "--quiet"]) == 2
    assert "is a folder" in one_line(capsys.readouterr().err)


def test_silencing_survives_a_closed_stderr(monkeypatch):
    def no_fd(fd):
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))

    monkeypatch.delenv("PNEUMO_DEBUG", raising=False)
    monkeypatch.setattr(pneumo.inference.native_stderr.os, "dup", no_fd)
    with pneumo.inference.native_stderr.native_stderr_silenced():
        ran = True
    assert ran


def test_an_os_error_reading_a_row_is_that_rows_line():
    err = PermissionError(errno.EACCES, "Permission denied", "/data/films/x.png")
    assert batch._error_text(err) == "cannot read x.png: Permission denied"
    assert batch._error_text(MemoryError()) == "not enough memory to read this row"
