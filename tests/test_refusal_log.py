"""Issue 28 item 11: a refusal's reason is stored in the case log, so it never holds a header
cell of the user's file: a lab CSV whose columns are a name, an MRN and a birth date is refused
as "3 unrecognised columns", in the log and on stderr alike."""
from __future__ import annotations

import sqlite3

from test_cli import needs_model, run_cli

CELLS = ("Doe^Secretive", "MRN-778899", "19500101")


@needs_model
def test_unrecognised_columns_are_counted_not_named(tmp_path):
    labs = tmp_path / "labs.csv"
    labs.write_text(",".join(CELLS) + "\n1,2,3\n")
    home = tmp_path / "home"
    proc = run_cli("predict", "--labs", labs, home=home)
    assert proc.returncode == 2 and "3 unrecognised columns" in proc.stderr, proc.stderr
    with sqlite3.connect(home / "cases.sqlite") as conn:
        reasons = [r for (r,) in conn.execute("SELECT reason FROM refusals")]
    assert len(reasons) == 1 and "3 unrecognised columns" in reasons[0]
    for cell in CELLS:
        assert cell not in reasons[0] and cell not in proc.stderr, cell
