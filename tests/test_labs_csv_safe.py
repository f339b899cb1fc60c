"""CSV-injection escaping (pneumo.service.csv_safe)."""
from __future__ import annotations

import pandas as pd
import pytest

from pneumo.data.labs import default_panel, parse_labs
from pneumo.service.csv_safe import safe_cell, safe_frame, write_safe_csv


@pytest.mark.parametrize("cell", ["=1+2", "+cmd", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "=HYPERLINK(\"x\")"])
def test_triggers_are_escaped(cell):
    assert safe_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["abc", "140", "", " ok", 3, -2.5, None, "a=b"])
def test_other_cells_unchanged(cell):
    assert safe_cell(cell) == cell


def test_write_safe_csv(tmp_path):
    df = pd.DataFrame({"name": ["=cmd()", "ok"], "=col": ["@x", "-1"], "n": [-1.5, 2.0]})
    path = tmp_path / "out.csv"
    write_safe_csv(df, path)
    back = pd.read_csv(path)
    assert list(back.columns) == ["name", "'=col", "n"]
    assert back["name"].tolist() == ["'=cmd()", "ok"]
    assert back["'=col"].tolist() == ["'@x", "'-1"]
    assert back["n"].tolist() == [-1.5, 2.0]           # numbers stay numbers
    assert df["name"][0] == "=cmd()"                    # the caller's frame is untouched
    assert safe_frame(df).shape == df.shape


def test_escaped_cells_read_back_by_the_lab_parser(tmp_path):
    path = tmp_path / "labs.csv"
    write_safe_csv(pd.DataFrame({"sodium": ["-5"], "glucose": ["=1+2"], "wbc": [7.5]}), path)
    r = parse_labs(path, default_panel())
    assert r.values["wbc"] == 7.5 and r.values["sodium"] is None and r.values["glucose"] is None
    assert {e.key for e in r.errors} == {"sodium", "glucose"}
