"""Issue 28: formula cells that slip past a first-character test (a leading space, CR or LF, a
zero-width character, full-width `＝`/`＋`), in every CSV pneumo writes: the batch's OUT, the case
log's export and the History/Batch pages' downloads (pneumo.service.uploads.csv_bytes)."""
from __future__ import annotations

import csv
import io
import unicodedata

import pandas as pd
import pytest

from pneumo.present.app_support import history_frame
from pneumo.service.batch import run_batch
from pneumo.service.case_log import CaseLog
from pneumo.service.csv_safe import looks_like_formula, safe_cell
from pneumo.service.uploads import csv_bytes
from tests.test_audit import FakeResult as LogResult
from tests.test_batch import FakePredictor, read_out, write_manifest, write_png

# What LibreOffice with "trim spaces" (or a spreadsheet reading full-width forms) runs as a formula
ATTACKS = [
    ' =HYPERLINK("http://evil","x")',
    "  +cmd|' /C calc'!A0",
    "\r=1+2",
    "\n=1+2",
    "\r\n@SUM(A1)",
    "\u200b=1+2",                 # zero-width space
    "\u200d\u2060=1+2",           # zero-width joiner, word joiner
    "\ufeff=1+2",                 # BOM
    "\u00a0=1+2",                 # no-break space
    "\u3000=1+2",                 # ideographic space
    "\u3164=1+2",                 # Hangul filler (renders as nothing)
    "\x00=1+2", "\x0b-1+2",       # control characters
    "\uff1dHYPERLINK(\"http://evil\")",   # full-width ＝
    "\uff0bcmd",                          # full-width ＋
    " \uff20SUM(A1)",                     # space + full-width ＠
    "\ufe66 1+2",                         # small form ＝
]
SAFE = ["abc", "140", "", " ok", "a=b", "\u200bfine", "\uff21BC", "note: =1"]


def _cells_as_a_trimming_spreadsheet_sees_them(text: str) -> list[str]:
    """Cells split as a spreadsheet splits them (a bare CR outside quotes ends a row), then trimmed."""
    out = []
    for row in csv.reader(io.StringIO(text, newline="")):
        for cell in row:
            norm = unicodedata.normalize("NFKC", cell)
            out.append(norm.lstrip("".join(chr(c) for c in range(0x21)) + "\u00a0\u200b\u200d\u2060\ufeff\u3164"))
    return out


def _no_formula(text: str) -> None:
    for cell in _cells_as_a_trimming_spreadsheet_sees_them(text):
        assert not cell.startswith(("=", "+", "-", "@")), repr(cell)


@pytest.mark.parametrize("cell", ATTACKS)
def test_hidden_and_full_width_triggers_are_escaped(cell):
    assert looks_like_formula(cell)
    assert safe_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", SAFE)
def test_ordinary_text_is_left_alone(cell):
    assert safe_cell(cell) == cell


def test_batch_out_escapes_every_attack(tmp_path):
    root = tmp_path / "data"
    rows = []
    for i, attack in enumerate(ATTACKS):
        write_png(root / f"{i}.png", i)
        rows.append({"image_path": f"{i}.png", "note": attack, f"{attack}{i}": "x"})   # cell and column name
    write_manifest(root / "manifest.csv", rows)
    out = tmp_path / "out.csv"
    s = run_batch(root / "manifest.csv", out, predictor=FakePredictor(), progress=False)
    assert s.scored == len(ATTACKS)
    _no_formula(out.read_bytes().decode("utf-8"))
    notes = [r["note"] for r in read_out(out)]
    assert all(n.startswith("'") for n in notes), notes
    # --resume recognises the escaped rows: nothing is scored twice
    again = run_batch(root / "manifest.csv", out, predictor=FakePredictor(), progress=False, resume=True)
    assert again.skipped_resumed == len(ATTACKS) and again.scored == 0


def test_case_log_export_and_history_download_escape_every_attack(tmp_path):
    log = CaseLog(tmp_path / "cases.sqlite")
    for attack in ATTACKS:
        log.record(LogResult(band=attack, validity=attack, warnings=[attack.replace("\x00", "")]),
                   labs={}, origin="app")
    export = tmp_path / "log.csv"
    assert log.export_csv(export) == len(ATTACKS)
    _no_formula(export.read_bytes().decode("utf-8"))
    download = csv_bytes(history_frame(log.recent(500))).decode("utf-8")
    _no_formula(download)
    assert download.count("'") >= len(ATTACKS)


def test_batch_page_download_escapes_every_attack():
    frame = pd.DataFrame({"note": ATTACKS, "probability": [0.5] * len(ATTACKS)})
    _no_formula(csv_bytes(frame).decode("utf-8"))
