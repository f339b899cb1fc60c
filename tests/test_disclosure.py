"""The one rule of what a case outside the intended use shows (pneumo.inference.disclosure), and the
case log's record of the request: the column, the migration of an existing log file, History."""
from __future__ import annotations

import sqlite3

import pytest

from pneumo.inference.case import Result
from pneumo.inference.disclosure import Shown, as_asked, shown
from pneumo.present import case_words as words
from pneumo.present.app_support import history_frame
from pneumo.service.case_log import SCHEMA_VERSION, CaseLog

REASON = "the DICOM header gives an age outside 1-5 years"


def _result(use="within", p=0.81, **kw) -> Result:
    return Result(probability=p, label="PNEUMONIA" if p >= 0.5 else "NORMAL", threshold=0.5, band="clear",
                  modalities={"image": True, "labs": False}, modality_contribution={"image": 0.3, "labs": 0.0},
                  intended_use=use, intended_use_reason=REASON if use == "outside" else "a child", **kw)


def test_within_and_unknown_show_the_answer():
    for use in ("within", "unknown"):
        assert shown(_result(use)) == Shown("PNEUMONIA", 0.81, True, None, True)
        assert shown(_result(use, 0.2)).label == "NORMAL"


def test_outside_shows_nothing_unless_asked_for_this_case():
    r = _result("outside")
    assert shown(r) == shown(r, False) == Shown(None, None, False, REASON, False)
    asked = shown(r, True)
    assert (asked.label, asked.probability, asked.verdict_colour, asked.lead_reason, asked.gradcam, asked.asked) == \
        ("PNEUMONIA", 0.81, False, REASON, True, True)
    # the request travels with the result: every later surface reads the same answer
    a, n = as_asked(r, True), as_asked(r, False)
    assert (a.label, a.outside_allowed, n.label, n.outside_allowed) == ("PNEUMONIA", True, "", False)
    assert shown(a) == asked and shown(n) == shown(r)
    assert as_asked(_result("within"), True).outside_allowed is False       # nothing to allow inside


def test_the_words_say_the_reason_first_and_never_the_label_outside():
    r = _result("outside")
    assert words.verdict_line(r) == f"No second opinion: this case is outside the model's intended use. {REASON[:1].upper() + REASON[1:]}."
    asked = words.verdict_line(as_asked(r, True))
    assert asked.startswith("No second opinion") and "P(pneumonia) 0.81" in asked and "PNEUMONIA" not in asked
    assert words.verdict_line(_result()).startswith("PNEUMONIA · P(pneumonia) 0.81")


def test_a_mapping_is_read_like_a_result():          # a case-log row
    row = {"probability": 0.9, "threshold": 0.5, "intended_use": "outside", "outside_allowed": 1}
    assert shown(row).probability == 0.9 and not shown(row).verdict_colour
    assert shown({**row, "outside_allowed": 0}).probability is None


def _v3_log(path) -> None:
    """A log as pneumo wrote it before the request was recorded (schema 3): the app logged an
    adult's film with the label it never showed."""
    from pneumo.service.case_log import _MIGRATIONS

    with sqlite3.connect(path) as conn:
        for step in range(3):
            conn.executescript(_MIGRATIONS[step])
        conn.execute("PRAGMA user_version = 3")
        for use, label in (("outside", "PNEUMONIA"), ("within", "NORMAL")):
            conn.execute("INSERT INTO cases (time, origin, labs, probability, label, threshold, warnings, "
                         "intended_use) VALUES ('2026-01-01T00:00:00.000Z', 'app', '{}', 0.7, ?, 0.5, '[]', ?)",
                         (label, use))


def test_a_schema_3_log_is_migrated_and_its_outside_labels_cleared(tmp_path):
    path = tmp_path / "old.sqlite"
    _v3_log(path)
    log = CaseLog(path, retention_days=0)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
        rows = conn.execute("SELECT intended_use, label, outside_allowed FROM cases ORDER BY id").fetchall()
    assert rows == [("outside", "", 0), ("within", "NORMAL", 0)]
    history = history_frame(log.recent())[::-1]
    assert history["Label"].tolist() == ["—", "NORMAL"]
    assert history["P(pneumonia)"].isna().tolist() == [True, False]
    CaseLog(path, retention_days=0)                    # opening again changes nothing
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0] == 2


def test_the_log_stores_the_label_only_when_asked_and_records_the_request(tmp_path):
    log = CaseLog(tmp_path / "c.sqlite", retention_days=0)
    outside = _result("outside", image_digest="ab" * 32)
    first = log.record(outside, origin="app")                 # a result that carries a label: not stored
    asked = log.record(as_asked(outside, True), origin="cli")
    later = log.record(as_asked(outside, False), origin="app")
    log.record_outside_request(later, outside)                # the page's "show anyway", after logging
    frame = log.recent()[::-1].reset_index(drop=True)
    assert frame["label"].tolist() == ["", "PNEUMONIA", "PNEUMONIA"]
    assert frame["outside_allowed"].tolist() == [0, 1, 1] and first
    shown_rows = history_frame(log.recent())[::-1]
    assert shown_rows["Label"].tolist() == ["—", "—", "—"]        # never a label word outside
    assert shown_rows["P(pneumonia)"].isna().tolist() == [True, False, False]
    assert shown_rows["Intended use"].tolist()[1] == "outside (number shown on request)"
    within = log.record(_result(), origin="app")
    log.record_outside_request(within, _result())             # nothing to allow inside: unchanged
    assert log.recent().iloc[0]["outside_allowed"] == 0 and asked


@pytest.mark.parametrize("use", ["within", "outside"])
def test_the_batch_csv_cell_is_the_rule(use):
    from types import SimpleNamespace

    from pneumo.service.batch_output import out_cells

    it = SimpleNamespace(result=_result(use), error=None, index=0, row={})
    label = out_cells(it, [], "b")[2]
    assert label == ("PNEUMONIA" if use == "within" else "")
    assert out_cells(it, [], "b", allow_outside=True)[2] == "PNEUMONIA"
