"""Issue 28: `explain --out` on a full disk exits 2 with one line (like the batch) and leaves no
partial file: it used to exit 1 with an internal-error line and a 0-byte overlay.png. The full disk
is simulated in-process (no tmpfs without root): the first write that fills it leaves what a real
one leaves (an empty or half file) and raises OSError(ENOSPC)."""
from __future__ import annotations

import errno
import os

import pytest
from PIL import Image

import pneumo.present.case_outputs as case_outputs
from pneumo import config
from pneumo.cli.main import main

from test_cli import needs_model

pytestmark = [needs_model, pytest.mark.data]


def _enospc():
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture
def film(tmp_path, monkeypatch):
    monkeypatch.setenv("PNEUMO_HOME", str(tmp_path / "home"))
    return next((config.kermany_dir() / "test" / "PNEUMONIA").glob("*.jpeg"))


def _explain(film, out, capsys):
    rc = main(["explain", "--image", str(film), "--out", str(out), "--allow-outside", "--no-log"])
    return rc, capsys.readouterr().err


def _one_line(rc, err):
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert "disk is full" in lines[0] and "ENOSPC" in lines[0], lines[0]


def test_the_first_png_fills_the_disk(film, tmp_path, monkeypatch, capsys):
    def full(self, fp, *args, **kwargs):          # the file is created, nothing reaches the disk
        open(fp, "wb").close()
        raise _enospc()

    monkeypatch.setattr(Image.Image, "save", full)
    out = tmp_path / "out"
    _one_line(*_explain(film, out, capsys))
    assert list(out.iterdir()) == []             # no 0-byte overlay.png, no staging folder


def test_a_late_file_fills_the_disk_and_an_earlier_run_stands(film, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    rc, err = _explain(film, out, capsys)
    assert rc == 0, err
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert {"overlay.png", "explanation.json", "report.pdf"} <= set(before)
    real = case_outputs.write_private

    def full(path, data):
        if path.name == "report.pdf":             # half of it, then the disk is full
            real(path, data[: len(data) // 2])
            raise _enospc()
        return real(path, data)

    monkeypatch.setattr(case_outputs, "write_private", full)
    _one_line(*_explain(film, out, capsys))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_an_out_under_a_file_is_one_line(film, tmp_path, capsys):
    blocker = tmp_path / "plain"
    blocker.write_text("x")
    rc, err = _explain(film, blocker / "out", capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
