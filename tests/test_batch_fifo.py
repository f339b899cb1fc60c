"""Issue 28: a FIFO (or a device) named by a manifest row is that row's error, at once; it used to
block the batch forever in open(), waiting for a writer."""
from __future__ import annotations

import os
import threading
import time

import pytest

from pneumo.data.imaging import read_image
from pneumo.errors import ImageError
from pneumo.service.batch import run_batch
from tests.test_batch import FakePredictor, read_out, write_manifest, write_png

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
LIMIT_S = 10


def _unblock(fifo) -> None:
    """Open the FIFO for writing, so that a reader stuck in open() returns (the test then fails, not hangs)."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
    except OSError:
        pass


def _within_limit(fn, fifo):
    box = {}

    def call():
        try:
            box["value"] = fn()
        except BaseException as err:  # noqa: BLE001 - raised again in the test's thread
            box["error"] = err

    worker = threading.Thread(target=call, daemon=True)
    t0 = time.monotonic()
    worker.start()
    worker.join(LIMIT_S)
    if worker.is_alive():
        _unblock(fifo)
        worker.join(5)
        pytest.fail(f"still reading the FIFO after {LIMIT_S} s")
    if "error" in box:
        raise box["error"]
    return box.get("value"), time.monotonic() - t0


def test_read_image_refuses_a_fifo_and_a_device(tmp_path):
    fifo = tmp_path / "film.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageError, match="not a regular file"):
        _within_limit(lambda: read_image(fifo), fifo)
    if os.path.exists("/dev/zero"):
        with pytest.raises(ImageError, match="not a regular file"):
            read_image("/dev/zero")


def test_a_fifo_row_is_that_rows_error_and_the_batch_goes_on(tmp_path):
    write_png(tmp_path / "good.png", 1)
    os.mkfifo(tmp_path / "pipe.png")
    write_png(tmp_path / "after.png", 2)
    write_manifest(tmp_path / "manifest.csv", [{"image_path": "good.png"}, {"image_path": "pipe.png"},
                                               {"image_path": "after.png"}])
    out = tmp_path / "out.csv"
    summary, seconds = _within_limit(lambda: run_batch(tmp_path / "manifest.csv", out, predictor=FakePredictor(),
                                                       progress=False), tmp_path / "pipe.png")
    rows = read_out(out)
    assert (summary.scored, summary.errors) == (2, 1) and seconds < LIMIT_S
    assert "not a regular file" in rows[1]["error"] and rows[1]["probability"] == ""
    assert rows[0]["error"] == rows[2]["error"] == ""
